"""The daemon's main: serve the Docker Engine API until SIGTERM or SIGINT
(``vmcontainer daemon``, whose options are in ``vmcontainer.cli.daemon``).

Builds one EngineContext and one Engine; the accelerator is chosen as for ``run``,
but VMs are not tied to this process (``tie_to_parent=False``): they outlive the
daemon, and the next daemon adopts them.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from vmcontainer.api.daemonconfig import DaemonConfig, default_config_file, merge
from vmcontainer.cli.progress import BuildProgress
from vmcontainer.config import Settings
from vmcontainer.engine.context import EngineContext
from vmcontainer.errors import Conflict, Unavailable, VmcError
from vmcontainer.network.hosttools import check_bridge_host
from vmcontainer.vm.accel import choose_accelerator
from vmcontainer.vm.factory import BackendKind, open_backend

log = logging.getLogger("vmcontainer.daemon")


def _setup_logging(debug: bool) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if not debug:
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL + 1)
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
        # Malformed HTTP from a client (bad request line, lying Content-Length) is
        # answered 400 by aiohttp, which also logs it with a traceback at ERROR:
        # that is the client's fault, not the daemon's; shown with -D only.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)


def _settings(config: DaemonConfig) -> Settings:
    env = replace(Settings.from_env(config.network_mode),
                  insecure_registries=config.insecure_registries,
                  registry_mirrors=config.registry_mirrors,
                  registry_certs_dir=config.registry_certs_dir)
    if config.data_root is None:
        return env
    boot = os.environ.get("VMCONTAINER_BOOT_DIR")
    return replace(env, root=config.data_root,
                   boot_dir=Path(boot) if boot else config.data_root / "boot")


async def _backend(ctx: EngineContext, config: DaemonConfig) -> None:
    assets = await asyncio.to_thread(ctx.boot_assets)
    progress = ctx._progress
    if isinstance(progress, BuildProgress):
        progress.close()
    choice = await choose_accelerator(assets, ctx.settings.boot_dir)
    if choice.accel == "tcg":
        log.warning("KVM is not usable (%s); VMs run under TCG software emulation, slowly",
                    choice.reason)
    ctx.backend = await open_backend(BackendKind(config.backend), choice.accel,
                                     config.libvirt_uri, config.libvirt_pool)


def hold_pidfile(path: Path) -> int:
    """Write this process's PID to ``path`` and hold an exclusive lock on it for the
    daemon's life (as dockerd's ``--pidfile``): a second daemon on the same data
    root would corrupt its state, so it is refused. Returns the open fd.

    Raises Conflict naming the PID that holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise Conflict(f"pid file found, ensure vmcontainer is not running or delete "
                       f"{path} (held by process {holder or '?'})") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


async def _main(config: DaemonConfig, pidfile: Path | None) -> None:
    from vmcontainer.api.server import serve  # aiohttp: imported only by the daemon
    from vmcontainer.engine.engine import Engine
    from vmcontainer.engine.netstart import restore_networks

    settings = _settings(config)
    if settings.network_driver == "bridge":
        try:  # before anything changes on the host: no half-made bridge or table
            check_bridge_host()
        except Unavailable as err:
            raise Unavailable(f"failed to start daemon: {err}") from None
    pid_path = pidfile or settings.root / "vmcontainer.pid"
    pid_fd = hold_pidfile(pid_path)
    ctx = EngineContext(settings, progress=BuildProgress())
    await _backend(ctx, config)
    engine = Engine(ctx)
    adopted = await engine.adopt()
    if adopted:
        log.info("adopted %d running containers", len(adopted))
    restore_networks(ctx, set(adopted))
    restored = await engine.restore()
    if restored:
        log.info("started %d containers by their restart policy", len(restored))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("vmcontainer daemon: data root %s, backend %s, accelerator %s, network mode %s",
             ctx.settings.root, ", ".join(v for _, v in ctx.backend.status()),
             ctx.backend.accelerator, ctx.settings.network_driver)
    try:
        await serve(engine, config.hosts, stop, tls=config.tls, debug=config.debug,
                    group=config.group)
    finally:
        await engine.close()
        log.info("daemon stopped; running containers keep running")
        pid_path.unlink(missing_ok=True)
        os.close(pid_fd)


def run(flags: dict[str, Any], config_file: Path | None, pidfile: Path | None) -> None:
    """Merge ``flags`` (keyed as daemon.json) with the config file, then serve.
    Exits 1 with one line for a bad configuration or a failing start."""
    try:
        config = merge(flags, config_file or default_config_file(), config_file is not None)
    except VmcError as err:
        click.echo(f"vmcontainer daemon: {err}", err=True)
        sys.exit(1)
    _setup_logging(config.debug)
    try:
        asyncio.run(_main(config, pidfile))
    except VmcError as err:
        log.error("%s", err)
        sys.exit(1)
