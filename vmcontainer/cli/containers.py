"""``vmcontainer ps | logs | inspect | rm`` through the daemon."""

from __future__ import annotations

import json
import sys
import time

import click

from vmcontainer.cli import client
from vmcontainer.cli.format import human_duration, table


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
def ps(show_all: bool, quiet: bool, no_trunc: bool) -> None:
    """List containers."""
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for s in client.api().containers(all=show_all):
        cid = s["Id"] if no_trunc else s["Id"][:12]
        if quiet:
            click.echo(cid)
            continue
        cmd = s["Command"] if no_trunc or len(s["Command"]) <= 20 else s["Command"][:19] + "…"
        rows.append([cid, s["Image"], f'"{cmd}"',
                     f"{human_duration(time.time() - s['Created'])} ago", s["Status"], "",
                     s["Names"][0].lstrip("/")])
    if not quiet:
        click.echo(table(rows))


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end")
@click.argument("container")
def logs(follow: bool, timestamps: bool, tail: str, container: str) -> None:
    """Fetch the logs of a container (stdout to stdout, stderr to stderr)."""
    import docker.errors

    api = client.api()
    params = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": int(timestamps),
              "tail": tail}
    try:
        tty = api.inspect_container(container)["Config"]["Tty"]
        res = api._get(api._url("/containers/{0}/logs", container), params=params,
                       stream=True)
        api._raise_for_status(res)
    except docker.errors.APIError as err:
        client.fail(err)
    # docker-py's public logs() merges the two streams: read the frames here.
    client.copy_out(client.demux(res.raw, tty))


@click.command()
@click.argument("names", nargs=-1, required=True)
def inspect(names: tuple[str, ...]) -> None:
    """Return low-level information on containers or images (Docker's inspect JSON)."""
    import docker.errors

    api, out, code = client.api(), [], 0
    for name in names:
        try:
            out.append(api.inspect_container(name))
        except docker.errors.NotFound:
            try:
                out.append(api.inspect_image(name))
            except docker.errors.NotFound:
                click.echo(f"Error: No such object: {name}", err=True)
                code = 1
    click.echo(json.dumps(out, indent=4))
    sys.exit(code)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes (none yet)")
@click.argument("names", nargs=-1, required=True)
def rm(force: bool, volumes: bool, names: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    import docker.errors

    api, code = client.api(), 0
    for name in names:
        try:
            api.remove_container(name, force=force, v=volumes)
            click.echo(name)
        except docker.errors.APIError as err:
            click.echo(f"Error response from daemon: {client.error_text(err)}", err=True)
            code = 1
    sys.exit(code)
