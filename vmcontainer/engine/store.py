"""ContainerStore: ``<root>/containers/<id>/`` on disk (DESIGN.md "On disk").

Every record write is atomic (temp file, fsync, rename). Creation, renaming and
removal hold one store lock (flock) so that two processes cannot take one name.
Lookups accept a full ID, a unique ID prefix or a name, as Docker does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from vmcontainer.engine.container import Container
from vmcontainer.engine.state import Status, now_rfc3339
from vmcontainer.errors import Conflict, ContainerNotFound, InvalidParameter
from vmcontainer.vm.process import hypervisor_alive

RECORD = "config.json"


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (same-directory temp + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _vm_alive(c: Container) -> bool:
    """The qemu backend's check, until a backend is set (``ContainerStore.vm_alive``)."""
    return hypervisor_alive(f"vmc-{c.short_id}", c.state.pid)


class ContainerStore:
    """Records of all containers under ``directory`` (``<root>/containers``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        # Whether a container's VM still runs: the backend's answer once one is set.
        self.vm_alive: Callable[[Container], bool] = _vm_alive

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store lock (exclusive, across processes)."""
        with open(self.directory / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def dir(self, cid: str) -> Path:
        return self.directory / cid

    def save(self, c: Container) -> None:
        atomic_write(self.dir(c.id) / RECORD, json.dumps(c.to_json(), indent=1).encode())

    def load(self, cid: str) -> Container:
        """The record of ``cid``, reconciled: a record that says running while its
        hypervisor process is gone (the process watching the VM was killed) is
        saved and returned as exited with 137 (a ``restarting`` record has no VM: the
        daemon's restart policy handles it). Raises ContainerNotFound."""
        try:
            data = json.loads((self.dir(cid) / RECORD).read_text())
        except FileNotFoundError as err:
            raise ContainerNotFound(cid) from err
        c = Container.from_json(data)
        if c.state.status in (Status.RUNNING, Status.PAUSED) and not self.vm_alive(c):
            c = c.with_state(c.state.move(
                Status.EXITED, pid=0, exit_code=137, finished_at=now_rfc3339(),
                error="the VM ended while no vmcontainer process was watching it"))
            with contextlib.suppress(OSError):
                self.save(c)
        return c

    def all(self) -> list[Container]:
        """Every readable record, newest first."""
        out = []
        for entry in self.directory.iterdir():
            if entry.is_dir() and (entry / RECORD).is_file():
                with contextlib.suppress(ContainerNotFound, ValueError, KeyError):
                    out.append(self.load(entry.name))
        return sorted(out, key=lambda c: c.created, reverse=True)

    def find(self, ref: str) -> Container:
        """By full ID, name (with or without leading '/'), or unique ID prefix.
        Raises ContainerNotFound (``No such container: <ref>``), and InvalidParameter
        for an ambiguous prefix (Docker: "multiple IDs found with provided prefix")."""
        if not ref or "/" in ref.lstrip("/") or len(ref) > 256:
            raise ContainerNotFound(ref[:256])
        if len(ref) == 64 and (self.dir(ref) / RECORD).is_file():
            return self.load(ref)
        name = ref.lstrip("/")
        everything = self.all()
        for c in everything:
            if c.name == name:
                return c
        matches = [c for c in everything if c.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        if not matches:
            raise ContainerNotFound(ref)
        return matches[0]

    def check_name_free(self, name: str) -> None:
        """Raises Conflict with Docker's wording when ``name`` is taken. Call with
        the store lock held."""
        for c in self.all():
            if c.name == name:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{c.id}". You have to remove (or rename) that container to be able to '
                    "reuse that name."
                )

    def delete(self, cid: str) -> None:
        """Remove the container's directory and everything in it."""
        shutil.rmtree(self.dir(cid), ignore_errors=True)
