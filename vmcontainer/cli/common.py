"""What every command shares: the engine context, errors as Docker prints them,
boot-asset build progress."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from vmcontainer.config import Settings
from vmcontainer.engine.context import EngineContext
from vmcontainer.errors import VmcError
from vmcontainer.vm.accel import choose_accelerator
from vmcontainer.vm.qemu import QemuBackend

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1, prefix: str = "") -> NoReturn:
    click.echo(f"{prefix}Error response from daemon: {message}", err=True)
    sys.exit(code)


def handles_errors(fn: F) -> F:
    """Print VmcErrors Docker's way (``Error response from daemon: ...``), exit 1."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VmcError as err:
            fail(str(err))
    return wrapper  # type: ignore[return-value]


class BuildProgress:
    """Shows boot-asset builds (the kernel takes minutes) as a progress bar on a
    terminal and as occasional plain lines otherwise."""

    def __init__(self) -> None:
        self._bar: Any = None  # rich.progress.Progress, imported only when building
        self._task: Any = None
        self._what = ""
        self._last_plain = 0

    def __call__(self, what: str, done: int, total: int, line: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        err_console = Console(stderr=True)
        if not err_console.is_terminal:
            if what != self._what or done - self._last_plain >= 200:
                click.echo(f"building {what}: {done}/{total or '?'} {line}", err=True)
                self._what, self._last_plain = what, done
            return
        if self._bar is None or what != self._what:
            self.close()
            self._what = what
            self._bar = Progress(TextColumn("building {task.description}"), BarColumn(),
                                 TextColumn("{task.fields[line]}"), TimeElapsedColumn(),
                                 console=err_console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(what, total=total or None, line="")
        self._bar.update(self._task, completed=min(done, total) if total else done,
                         line=line[:50])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def make_context() -> EngineContext:
    return EngineContext(Settings.from_env(), progress=BuildProgress())


async def with_backend(ctx: EngineContext) -> EngineContext:
    """Choose the accelerator (KVM if it works, else TCG with one warning per host
    boot) and set the qemu backend on ``ctx``."""
    assets = ctx.boot_assets()
    progress = ctx._progress
    if isinstance(progress, BuildProgress):
        progress.close()
    choice = await choose_accelerator(assets, ctx.settings.boot_dir)
    if choice.accel == "tcg" and choice.fresh:
        click.echo(f"WARNING: KVM is not usable ({choice.reason}); "
                   "VMs run under TCG software emulation, slowly", err=True)
    ctx.backend = QemuBackend(choice.accel, tie_to_parent=True)
    return ctx


def setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not debug:
        # qemu.qmp logs every failed connection attempt at ERROR; the backend
        # handles those, so its messages are for debugging only.
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL + 1)


def daemon_host() -> str | None:
    """The ``-H`` / VMCONTAINER_HOST the command was given, if any."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get("host") if isinstance(obj, dict) else None


def local_only(command: str) -> None:
    """Refuse a command that has no client mode yet when ``-H`` is given."""
    if daemon_host():
        click.echo(f"vmcontainer {command}: not available with -H yet; use the docker CLI "
                   "with DOCKER_HOST", err=True)
        sys.exit(125)
