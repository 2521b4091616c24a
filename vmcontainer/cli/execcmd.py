"""``vmcontainer exec``: run a command in a running container, as ``docker exec``
(without a TTY): its exit code is the command's; 126/127 when it cannot be
executed; 1 for a daemon error (no such container, not running)."""

from __future__ import annotations

import sys

import click

from vmcontainer.cli import client
from vmcontainer.cli.interact import interact
from vmcontainer.cli.options import env_item


@click.command(name="exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run in the background")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open and pipe it in")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", default="", help="Working directory inside the container")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(detach: bool, interactive: bool, env: tuple[str, ...], user: str, workdir: str,
          container: str, command: tuple[str, ...]) -> None:
    """Execute a command in a running container."""
    import docker.errors

    api = client.api()
    environment = [i for e in env if (i := env_item(e)) is not None]
    try:
        created = api.exec_create(container, list(command), stdin=interactive and not detach,
                                  user=user, environment=environment,
                                  workdir=workdir or None)
        if detach:
            api.exec_start(created["Id"], detach=True)
            return
        conn = api.exec_start(created["Id"], socket=True)
    except docker.errors.APIError as err:
        client.fail(err)
    interact(conn, with_stdin=interactive)
    code = api.exec_inspect(created["Id"]).get("ExitCode")
    sys.exit(126 if code is None else int(code))
