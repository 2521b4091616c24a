"""What the routes need from the engine, split by concern (after moby's
``daemon/server/router/container/backend.go``). ``vmcontainer.engine.engine.Engine``
implements all of them; the routes never import it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, Protocol

from aiohttp import web

from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.events import EventBus
from vmcontainer.engine.execs import ExecManager
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.engine.start import Running

Chunk = tuple[str, bytes]
"""Output as the engine hands it out: ("stdout" | "stderr", bytes)."""


class ContainerReader(Protocol):
    def get(self, ref: str) -> Container: ...

    def inspect(self, ref: str) -> dict[str, Any]: ...

    def list(self, all: bool = False, limit: int = -1,
             filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]: ...


class ContainerLifecycle(Protocol):
    async def create(self, spec: ContainerSpec) -> Container: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, timeout: float | None = None) -> None: ...

    async def restart(self, ref: str, timeout: float | None = None) -> None: ...

    async def kill(self, ref: str, sig: str | int = "KILL") -> None: ...

    async def pause(self, ref: str) -> None: ...

    async def unpause(self, ref: str) -> None: ...

    def waiter(self, ref: str, condition: str = "not-running") -> Awaitable[dict[str, Any]]: ...

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...

    def rename(self, ref: str, new_name: str) -> None: ...

    def update(self, ref: str, changes: dict[str, Any]) -> list[str]: ...

    def prune(self) -> dict[str, Any]: ...


class ContainerOutput(Protocol):
    def logs(self, ref: str, *, follow: bool = False, since: float = 0, until: float = 0,
             tail: int = -1, timestamps: bool = False, stdout: bool = True,
             stderr: bool = True) -> AsyncIterator[Chunk]: ...

    def attach(self, ref: str, *, logs: bool = False, stream: bool = True,
               stdout: bool = True, stderr: bool = True) -> AsyncIterator[Chunk]: ...


class ContainerProcesses(Protocol):
    execs: ExecManager

    async def stdin_target(self, ref: str, poll_s: float = 0.01) -> Running | None: ...

    async def resize(self, ref: str, rows: int, cols: int) -> None: ...

    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]: ...

    def publish(self, action: str, c: Container, extra: dict[str, str] | None = None) -> None:
        ...

    def spawn(self, coro: Any) -> None: ...


class VolumeBackend(Protocol):
    async def volume_create(self, name: str, driver: str, labels: dict[str, str],
                            options: dict[str, str]) -> dict[str, Any]: ...

    def volume_inspect(self, name: str) -> dict[str, Any]: ...

    def volume_list(self, filters: dict[str, list[str]]) -> dict[str, Any]: ...

    def volume_remove(self, name: str, force: bool = False) -> None: ...

    def volume_prune(self, filters: dict[str, list[str]],
                     anonymous_only: bool) -> dict[str, Any]: ...


class ContainerFiles(Protocol):
    async def archive_stat(self, ref: str, path: str) -> dict[str, Any]: ...

    def archive_get(self, ref: str, path: str) -> contextlib.AbstractAsyncContextManager[
            tuple[dict[str, Any], AsyncIterator[bytes]]]: ...

    async def archive_put(self, ref: str, path: str, body: AsyncIterator[bytes],
                          no_overwrite_dir_non_dir: bool = False,
                          copy_uid_gid: bool = False) -> None: ...

    def export(self, ref: str) -> contextlib.AbstractAsyncContextManager[
            AsyncIterator[bytes]]: ...

    async def changes(self, ref: str) -> list[dict[str, Any]]: ...

    async def commit(self, ref: str, reference: str | None = None, comment: str = "",
                     author: str = "", changes: Sequence[str] = (),
                     config: dict[str, Any] | None = None) -> str: ...


class SystemBackend(Protocol):
    ctx: EngineContext
    events: EventBus

    def info(self) -> dict[str, Any]: ...


class NetworkBackend(Protocol):
    def network_list(self, filters: dict[str, list[str]] | None = None
                     ) -> list[dict[str, Any]]: ...

    def network_inspect(self, ref: str) -> dict[str, Any]: ...

    def network_create(self, name: str, driver: str, internal: bool,
                       ipam_config: list[dict[str, str]], labels: dict[str, str],
                       options: dict[str, str], attachable: bool = False,
                       ipam_options: dict[str, str] | None = None) -> str: ...

    def network_remove(self, ref: str) -> None: ...

    def network_prune(self, filters: dict[str, list[str]] | None = None) -> list[str]: ...

    async def network_connect(self, ref: str, container: str,
                              config: dict[str, Any]) -> None: ...

    async def network_disconnect(self, ref: str, container: str,
                                 force: bool = False) -> None: ...


def _backend(request: web.Request) -> NetworkBackend:
    eng: Any = engine(request)
    backend: NetworkBackend = eng
    return backend


class EngineBackend(ContainerReader, ContainerLifecycle, ContainerOutput, ContainerProcesses,
                    VolumeBackend, ContainerFiles, SystemBackend, NetworkBackend,
                    Protocol):
    """Everything the application needs; ``make_app`` takes one of these."""


ENGINE = web.AppKey("engine", EngineBackend)


def engine(request: web.Request) -> EngineBackend:
    return request.app[ENGINE]
