"""``vmcontainer ps | logs | inspect | rm``."""

from __future__ import annotations

import json
import sys
import time

import click

from vmcontainer.cli.common import daemon_host, fail, handles_errors, make_context
from vmcontainer.cli.format import human_duration, ps_command, ps_status, since, table
from vmcontainer.engine.logs import read_log
from vmcontainer.engine.remove import remove_container
from vmcontainer.errors import VmcError


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@handles_errors
def ps(show_all: bool, quiet: bool, no_trunc: bool) -> None:
    """List containers."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
        for s in remote.ps(host, show_all):
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
        return
    ctx = make_context()
    items = [c for c in ctx.store.all() if show_all or c.state.running]
    if quiet:
        for c in items:
            click.echo(c.id if no_trunc else c.short_id)
        return
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
    for c in items:
        rows.append([c.id if no_trunc else c.short_id, str(c.config.get("Image", "")),
                     ps_command(c, not no_trunc), f"{human_duration(since(c.created))} ago",
                     ps_status(c), "", c.name])
    click.echo(table(rows))


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end")
@click.argument("container")
@handles_errors
def logs(follow: bool, timestamps: bool, tail: str, container: str) -> None:
    """Fetch the logs of a container (stdout to stdout, stderr to stderr)."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        remote.logs(host, container, follow, timestamps, tail)
        return
    ctx = make_context()
    c = ctx.store.find(container)
    path = ctx.store.dir(c.id) / f"{c.id}-json.log"
    entries = list(read_log(path))
    if tail != "all":
        try:
            n = int(tail)
        except ValueError:
            fail(f'invalid value for "tail": "{tail}"')
        entries = entries[-n:] if n > 0 else []
    seen = len(list(read_log(path)))

    def emit(entry_stream: str, data: bytes, when: str) -> None:
        out = sys.stdout.buffer if entry_stream == "stdout" else sys.stderr.buffer
        out.write((when.encode() + b" " if timestamps else b"") + data)
        out.flush()

    for e in entries:
        emit(e.stream, e.data, e.time)
    while follow:
        done = not ctx.store.load(c.id).state.running
        new = list(read_log(path))[seen:]
        for e in new:
            emit(e.stream, e.data, e.time)
        seen += len(new)
        if done:
            return
        time.sleep(0.1)


@click.command()
@click.argument("names", nargs=-1, required=True)
def inspect(names: tuple[str, ...]) -> None:
    """Return low-level information on containers (Docker's inspect JSON)."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        sys.exit(remote.inspect(host, names))
    ctx = make_context()
    out, failed = [], False
    for name in names:
        try:
            c = ctx.store.find(name)
            out.append(c.inspect(ctx.store.dir(c.id)))
        except VmcError:
            try:
                out.append(ctx.images.inspect(name))
            except VmcError:
                click.echo(f"Error: No such object: {name}", err=True)
                failed = True
    click.echo(json.dumps(out, indent=4))
    if failed:
        sys.exit(1)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes (none yet)")
@click.argument("names", nargs=-1, required=True)
def rm(force: bool, volumes: bool, names: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        sys.exit(remote.rm(host, names, force))
    ctx = make_context()
    code = 0
    for name in names:
        try:
            remove_container(ctx, name, force=force)
            click.echo(name)
        except VmcError as err:
            click.echo(f"Error response from daemon: {err}", err=True)
            code = 1
    sys.exit(code)


