"""``vmcontainer run``: create + start + stream + wait (+ remove), Docker's exit codes:
125 when the container cannot be created or booted, 126/127 when its command
cannot be executed, otherwise the process's exit code."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import click

from vmcontainer.cli.common import daemon_host, make_context, with_backend
from vmcontainer.cli.options import env_item, nano_cpus, parse_env_file, ram_in_bytes
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.create import create_container
from vmcontainer.engine.remove import remove_container
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.engine.start import Running, start_container
from vmcontainer.errors import ImageNotFound, StartError, VmcError
from vmcontainer.image.reference import normalize

PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2)


def _sink(stream: str, data: bytes) -> None:
    out = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
    out.write(data)
    out.flush()


def _die(message: str, code: int) -> None:
    click.echo(f"vmcontainer: {message}\n", err=True)
    click.echo("Run 'vmcontainer run --help' for more information", err=True)
    sys.exit(code)


async def _run(spec: ContainerSpec) -> int:
    ctx = make_context()
    try:
        container = create_container(ctx.store, ctx.images, spec)
    except ImageNotFound:
        try:
            shown = normalize(spec.image).familiar
        except VmcError:
            shown = spec.image
        click.echo(f"Unable to find image '{shown}' locally", err=True)
        raise
    loop = asyncio.get_running_loop()
    state: dict[str, Running] = {}
    pending: list[int] = []
    sends: set[asyncio.Task[None]] = set()

    def on_signal(signum: int) -> None:
        """Docker's --sig-proxy (on by default): the signal goes to the container's
        process; before it runs, the start is abandoned."""
        if "running" not in state:
            pending.append(signum)
            starting.cancel()
            return
        task = asyncio.ensure_future(state["running"].signal(signum))
        sends.add(task)
        task.add_done_callback(sends.discard)

    for signum in PROXIED_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    starting = asyncio.ensure_future(_start(ctx, container.id))
    try:
        state["running"] = await starting
    except BaseException:
        if spec.auto_remove:
            with contextlib.suppress(VmcError):
                remove_container(ctx, container.id, force=True)
        if pending:
            return 128 + pending[0]
        raise
    code = await state["running"].wait()
    if spec.auto_remove:
        remove_container(ctx, container.id, force=True)
    return code


async def _start(ctx: EngineContext, cid: str) -> Running:
    await with_backend(ctx)
    return await start_container(ctx, cid, _sink)


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits")
@click.option("--name", default="", help="Assign a name to the container")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--env-file", multiple=True, type=click.Path(path_type=Path),
              help="Read in a file of environment variables")
@click.option("-w", "--workdir", default="", help="Working directory inside the container")
@click.option("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image")
@click.option("-h", "--hostname", default="", help="Container host name")
@click.option("-m", "--memory", default="", help="Memory of the VM (e.g. 256m)")
@click.option("--cpus", default="", help="Number of CPUs (rounded up to whole vCPUs)")
@click.option("-d", "--detach", is_flag=True, help="Run in the background, print the ID")
@click.option("-l", "--label", multiple=True, help="Set meta data on a container")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(auto_remove: bool, name: str, env: tuple[str, ...], env_file: tuple[Path, ...],
        workdir: str, user: str, entrypoint: str | None, hostname: str, memory: str,
        cpus: str, detach: bool, label: tuple[str, ...], image: str,
        command: tuple[str, ...]) -> None:
    """Create and run a new container from an image, in its own VM."""
    try:
        env_items = [i for f in env_file for i in parse_env_file(f)]
        env_items += [i for e in env if (i := env_item(e)) is not None]
        spec = ContainerSpec(
            image=image, cmd=command or None,
            entrypoint=None if entrypoint is None else ((entrypoint,) if entrypoint else ("",)),
            env=tuple(env_items), working_dir=workdir, user=user, hostname=hostname,
            name=name, labels=dict(lb.partition("=")[::2] for lb in label),
            memory_bytes=ram_in_bytes(memory) if memory else 0,
            nano_cpus=nano_cpus(cpus) if cpus else 0, auto_remove=auto_remove,
        )
    except VmcError as err:
        _die(str(err), 125)
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        sys.exit(remote.run(host, spec, detach))
    if detach:
        from vmcontainer.cli.detach import run_detached
        try:
            click.echo(run_detached(spec))
        except StartError as err:
            _die(f"Error response from daemon: {err}", err.exit_code)
        except VmcError as err:
            _die(f"Error response from daemon: {err}", 125)
        return
    try:
        code = asyncio.run(_run(spec))
    except StartError as err:
        if err.exit_code == 125:  # setup failed (e.g. unknown user): the bare message
            _die(f"Error response from daemon: {err}", 125)
        _die(f"Error response from daemon: failed to create task for container: "
             f"unable to start container process: {err}: unknown", err.exit_code)
    except VmcError as err:
        _die(f"Error response from daemon: {err}", 125)
    sys.exit(code)
