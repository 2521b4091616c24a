"""``vmcontainer run``: create, attach, start, stream, wait (and remove) through the
daemon, as ``docker run`` does. Exit codes as Docker's: 125 when the container
cannot be created or booted, 126/127 when its command cannot be executed,
otherwise the process's exit code.

Signals to this command go to the container's process (Docker's ``--sig-proxy``,
on by default; not with ``-t``, where the terminal's keys reach the container's
TTY as bytes, as with ``docker run -t``). ``-it`` detaches on ctrl-p ctrl-q.
Killing this command leaves the container running, as killing ``docker run``
does; ``vmcontainer rm -f`` removes it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from vmcontainer.cli import client, terminal
from vmcontainer.cli.interact import interact
from vmcontainer.cli.options import env_item, nano_cpus, parse_env_file, ram_in_bytes
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.errors import VmcError

PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2)


def _die(message: str, code: int) -> None:
    click.echo(f"vmcontainer: {message}\n", err=True)
    click.echo("Run 'vmcontainer run --help' for more information", err=True)
    sys.exit(code)


def _run(spec: ContainerSpec, detach: bool, interactive: bool = False,
         tty: bool = False) -> int:
    import docker.errors

    if tty and interactive and not detach and not sys.stdin.isatty():
        click.echo(terminal.NOT_A_TTY, err=True)
        return 1
    api = client.api()
    host_config = api.create_host_config(
        auto_remove=spec.auto_remove,
        mem_limit=spec.memory_bytes or None,
        nano_cpus=spec.nano_cpus or None,
    )
    if tty and not detach and (rc := terminal.size()) is not None:
        host_config["ConsoleSize"] = list(rc)  # Engine API >= 1.42, as the docker CLI
    try:
        created = api.create_container(
            spec.image, command=list(spec.cmd) if spec.cmd is not None else None,
            entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
            environment=list(spec.env), working_dir=spec.working_dir or None,
            user=spec.user or None, hostname=spec.hostname or None,
            name=spec.name or None, labels=spec.labels, host_config=host_config,
            detach=detach, stdin_open=interactive, tty=tty)
    except docker.errors.ImageNotFound as err:
        click.echo(f"Unable to find image '{_familiar(spec.image)}' locally", err=True)
        _die(f"Error response from daemon: {client.error_text(err)}", 125)
    except docker.errors.APIError as err:
        _die(f"Error response from daemon: {client.error_text(err)}", 125)
    cid = created["Id"]
    if detach:
        _start(api, cid)
        click.echo(cid)
        return 0
    if interactive or tty:
        conn = api.attach_socket(cid, params={"stdin": int(interactive), "stdout": 1,
                                              "stderr": 1, "stream": 1})
    else:
        output = api.attach(cid, stream=True, stdout=True, stderr=True, demux=True,
                            logs=False)
    condition = "removed" if spec.auto_remove else "next-exit"
    result: dict[str, Any] = {}
    # The wait is registered before the start, as the docker CLI's is: the daemon
    # answers its headers once registered (Engine API ContainerWait), and only the
    # body is read in the background. Else a --rm container can be gone before the
    # wait arrives (a new SSH session per connection made that likely: 404, 125).
    try:
        waiting = api.post(api._url("/containers/{0}/wait", cid), params={"condition": condition},
                           stream=True, timeout=None)
        api._raise_for_status(waiting)
    except docker.errors.APIError as err:
        _die(f"Error response from daemon: {client.error_text(err)}", 125)

    def wait() -> None:
        try:
            result.update(waiting.json())
        except Exception as err:  # the daemon went away: requests' errors, OSError
            result["error"] = err

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    _start(api, cid)
    if tty:
        terminal.follow_size(lambda rows, cols: api.resize(cid, rows, cols))
    else:
        for signum in PROXIED_SIGNALS:
            signal.signal(signum, lambda n, _f: _proxy(api, cid, n))
    detached = False
    with contextlib.suppress(Exception):  # a stream broken with the daemon: see wait
        if interactive or tty:
            with terminal.raw(tty and interactive):
                detached = interact(conn, with_stdin=interactive, tty=tty,
                                    detach_keys=terminal.DETACH_KEYS if tty else b"")
        else:
            client.copy_out(output)
    if detached:  # the container runs on, as after docker run -it's ctrl-p ctrl-q
        return 0
    waiter.join()
    if "error" in result or "StatusCode" not in result:
        # the docker CLI's words when the daemon's wait response breaks off
        click.echo("vmcontainer: error waiting for container: unexpected EOF", err=True)
        return 125
    return int(result["StatusCode"])


def _proxy(api: Any, cid: str, signum: int) -> None:
    """Docker's --sig-proxy; a daemon that is gone cannot forward it."""
    with contextlib.suppress(Exception):  # the wait reports the daemon's end
        api.kill(cid, int(signum))


def _start(api: Any, cid: str) -> None:
    import docker.errors

    try:
        api.start(cid)
    except docker.errors.APIError as err:
        text = client.error_text(err)
        _die(f"Error response from daemon: {text}", client.exit_code_for(text))


def _familiar(image: str) -> str:
    from vmcontainer.image.reference import normalize

    try:
        return normalize(image).familiar
    except VmcError:
        return image


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
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open and pipe it in")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-l", "--label", multiple=True, help="Set meta data on a container")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(auto_remove: bool, name: str, env: tuple[str, ...], env_file: tuple[Path, ...],
        workdir: str, user: str, entrypoint: str | None, hostname: str, memory: str,
        cpus: str, detach: bool, interactive: bool, tty: bool, label: tuple[str, ...], image: str,
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
    sys.exit(_run(spec, detach, interactive, tty))
