"""``vmcontainer exec``: run a command in a running container, as ``docker exec``:
its exit code is the command's; 126/127 when it cannot be executed; 1 for a
daemon error (no such container, not running) or ``-it`` without a terminal."""

from __future__ import annotations

import sys

import click

from vmcontainer.cli import client, terminal
from vmcontainer.cli.interact import interact
from vmcontainer.cli.options import env_item


@click.command(name="exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run in the background")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open and pipe it in")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", default="", help="Working directory inside the container")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(detach: bool, interactive: bool, tty: bool, env: tuple[str, ...], user: str,
          workdir: str, container: str, command: tuple[str, ...]) -> None:
    """Execute a command in a running container."""
    import docker.errors

    if tty and interactive and not detach and not sys.stdin.isatty():
        click.echo(terminal.NOT_A_TTY, err=True)
        sys.exit(1)
    api = client.api()
    environment = [i for e in env if (i := env_item(e)) is not None]
    try:
        created = api.exec_create(container, list(command), stdin=interactive and not detach,
                                  user=user, environment=environment,
                                  workdir=workdir or None, tty=tty)
        if detach:
            api.exec_start(created["Id"], detach=True)
            return
        conn = api.exec_start(created["Id"], socket=True, tty=tty)
    except docker.errors.APIError as err:
        client.fail(err)
    if tty:
        terminal.follow_size(lambda rows, cols: api.exec_resize(created["Id"], rows, cols))
    with terminal.raw(tty and interactive):
        if interact(conn, with_stdin=interactive, tty=tty,
                    detach_keys=terminal.DETACH_KEYS if tty else b""):
            sys.exit(0)  # detached (ctrl-p ctrl-q): the process runs on
    code = api.exec_inspect(created["Id"]).get("ExitCode")
    sys.exit(126 if code is None else int(code))
