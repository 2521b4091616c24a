"""A container's mounts at create, start and remove: named and anonymous volumes
made (and filled from the image, as Docker does), bind sources checked, and the
VM's share of them (disks, 9p shares, the guest config's ``mounts``).

Docker's rules followed: a named volume is created on first use; ``-v /path``,
``--mount type=volume`` without a source and the image's VOLUME list get
anonymous volumes (random 64-hex names, labelled ``com.docker.volume.anonymous``);
a new, empty volume mounted over a non-empty directory of the image gets that
directory's content (unless ``nocopy``); ``docker rm -v`` and ``--rm`` remove the
anonymous ones, never named ones.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vmcontainer.engine.container import Container
from vmcontainer.engine.store import ContainerStore
from vmcontainer.errors import Conflict, InvalidParameter, VmcError
from vmcontainer.vm.spec import DiskSpec, ShareSpec
from vmcontainer.volume.disk import fill_from_image
from vmcontainer.volume.mounts import BIND, TMPFS, VOLUME, MountPoint, check_bind_source
from vmcontainer.volume.store import ANONYMOUS_LABEL, VolumeNotFound, VolumeStore

log = logging.getLogger(__name__)


def prepare_mounts(volumes: VolumeStore, mounts: Sequence[MountPoint],
                   image_volumes: Iterable[str], base: Path, now: str) -> tuple[MountPoint, ...]:
    """The container's MountPoints, every volume existing (and filled) and every
    bind source checked. ``image_volumes``: the image's VOLUME paths (those no
    mount covers become anonymous volumes); ``base``: the image's base disk.
    On failure the anonymous volumes made here are removed again. Raises
    InvalidParameter (bind sources, volume options), System (disk tools)."""
    wanted = list(mounts)
    covered = {m.destination for m in wanted}
    for path in image_volumes:
        clean = "/" + path.strip("/")
        if clean != "/" and clean not in covered:
            covered.add(clean)
            wanted.append(MountPoint(VOLUME, clean, anonymous=True))
    out: list[MountPoint] = []
    made: list[str] = []
    try:
        for mp in wanted:
            if mp.type == BIND:
                check_bind_source(mp)
            elif mp.type == VOLUME:
                labels = {**mp.labels, **({ANONYMOUS_LABEL: ""} if mp.anonymous else {})}
                vol, created = volumes.create(mp.source, labels=labels, options=mp.options,
                                              created_at=now)
                if created and mp.anonymous:
                    made.append(vol.name)
                if not mp.nocopy and (created or volumes.empty(vol.name)) and \
                        fill_from_image(volumes.disk(vol.name), vol.size_bytes, base,
                                        mp.destination):
                    volumes.mark_filled(vol.name)
                mp = MountPoint(**{**mp.__dict__, "source": vol.name, "labels": {},
                                   "options": {}})
            out.append(mp)
    except BaseException:
        for name in made:
            with contextlib.suppress(VmcError):
                volumes.remove(name)
        raise
    return tuple(out)


def inherit_mounts(store: ContainerStore, volumes_from: Sequence[str],
                   mounts: Sequence[MountPoint]) -> tuple[MountPoint, ...]:
    """``mounts`` plus the volumes and binds of the containers of ``--volumes-from``
    (``name[:ro|rw]`` items), as Docker: a destination the request mounts itself
    wins; ``ro``/``rw`` override the source's mode. Raises ContainerNotFound,
    InvalidParameter for a bad mode."""
    out = list(mounts)
    taken = {m.destination for m in out}
    for item in volumes_from:
        ref, _, mode = item.partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
        for mp in store.find(ref).mounts:
            if mp.type == TMPFS or mp.destination in taken:
                continue
            taken.add(mp.destination)
            rw = mp.rw if not mode else mode == "rw"
            out.append(MountPoint(**{**mp.__dict__, "rw": rw, "create_source": True}))
    return tuple(out)


def remove_anonymous(volumes: VolumeStore, store: ContainerStore, mounts: Iterable[MountPoint],
                     except_id: str = "") -> list[str]:
    """Remove the anonymous volumes of ``mounts`` that no other container uses
    (``docker rm -v``); returns their names."""
    gone = []
    for mp in mounts:
        if mp.type != VOLUME or not mp.source:
            continue
        try:
            vol = volumes.get(mp.source)
        except VolumeNotFound:
            continue
        if vol.anonymous and not users(store, vol.name, except_id):
            with contextlib.suppress(VmcError):
                volumes.remove(vol.name)
                gone.append(vol.name)
    return gone


def users(store: ContainerStore, name: str, except_id: str = "",
          running_only: bool = False) -> list[str]:
    """IDs of the containers (running ones only, if asked) that mount volume ``name``."""
    return [c.id for c in store.all() if c.id != except_id
            and (c.state.running or not running_only)
            and any(m.type == VOLUME and m.source == name for m in c.mounts)]


def inspect_mounts(volumes: VolumeStore, c: Container) -> list[dict[str, Any]]:
    """inspect's ``Mounts``: Docker's MountPoint objects."""
    return [m.inspect(str(volumes.disk(m.source)) if m.type == VOLUME else "")
            for m in c.mounts if m.listed]


def machine_mounts(volumes: VolumeStore, store: ContainerStore, c: Container,
                   check: bool = True) -> tuple[tuple[DiskSpec, ...], tuple[ShareSpec, ...],
                                                list[dict[str, Any]]]:
    """(disks, 9p shares, the guest config's ``mounts``) for container ``c``.

    Each volume is a raw virtio-blk disk with serial ``volN``; each bind a 9p
    share tagged ``bindN``; tmpfs mounts are the agent's alone. With ``check``
    (a start, not an adoption): a volume already attached to another running
    container is a Conflict — one ext4 disk can be mounted by one VM at a time —
    and bind sources are checked again (``-v`` creates a missing one)."""
    disks: list[DiskSpec] = []
    shares: list[ShareSpec] = []
    guest: list[dict[str, Any]] = []
    serials: dict[str, str] = {}
    # Parents before children (/a before /a/b), as Docker sorts them; stable.
    for mp in sorted(c.mounts, key=lambda m: m.destination.count("/")):
        item: dict[str, Any] = {"type": mp.type, "destination": mp.destination,
                                "readonly": not mp.rw}
        if mp.type == VOLUME:
            if check and mp.source not in serials:
                volumes.get(mp.source)  # VolumeNotFound
                other = users(store, mp.source, c.id, running_only=True)
                if other:
                    raise Conflict(
                        f"volume {mp.source} is in use by running container {other[0][:12]}: "
                        "a vmcontainer volume is a disk that one running container (VM) "
                        "can use at a time")
                volumes.mark_filled(mp.source)
            if mp.source not in serials:  # one disk per volume, however often mounted
                serials[mp.source] = f"vol{len(disks)}"
                disks.append(DiskSpec(volumes.disk(mp.source), serials[mp.source],
                                      format="raw"))
            item["source"] = serials[mp.source]
            if mp.subpath:
                item["subpath"] = mp.subpath
        elif mp.type == BIND:
            if check:
                check_bind_source(mp)
            item["source"] = f"bind{len(shares)}"
            shares.append(ShareSpec(Path(mp.source), item["source"], readonly=not mp.rw))
        elif mp.type == TMPFS:
            item["options"] = mp.tmpfs_options
        guest.append(item)
    return tuple(disks), tuple(shares), guest
