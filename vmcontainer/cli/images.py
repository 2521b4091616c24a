"""``vmcontainer images | load | import | rmi``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from vmcontainer.cli.common import daemon_host, fail, handles_errors, local_only, make_context
from vmcontainer.cli.format import human_duration, since, table
from vmcontainer.errors import VmcError


def _size(n: int) -> str:
    """Docker's HumanSize (decimal units, 3 significant digits)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@handles_errors
def images(quiet: bool) -> None:
    """List images."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        listing = [(i["Id"], i.get("RepoTags") or [], time.time() - i["Created"], i["Size"])
                   for i in remote.images(host)]
    else:
        listing = [(i.id, list(i.repo_tags), since(i.created) if i.created else -1.0, i.size)
                   for i in make_context().images.list()]
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for image_id, repo_tags, age, size in sorted(listing, key=lambda i: i[2]):
        short = image_id.removeprefix("sha256:")[:12]
        if quiet:
            click.echo(short)
            continue
        for tag in repo_tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            created = f"{human_duration(age)} ago" if age >= 0 else "N/A"
            rows.append([repo, t, short, created, _size(size)])
    if not quiet:
        click.echo(table(rows))


@click.command()
@click.option("-i", "--input", "archive", default=None, type=click.Path(path_type=Path),
              help="Read from tar archive file, instead of STDIN (docker save or OCI archive)")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@handles_errors
def load(archive: Path | None, quiet: bool) -> None:
    """Load an image from a tar archive or STDIN."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        remote.load(host, archive)
        return
    ctx = make_context()
    if archive is None and sys.stdin.isatty():
        fail("requested load from stdin, but stdin is empty")
    for line in ctx.images.load(archive if archive is not None else sys.stdin.buffer):
        if not quiet:
            click.echo(line)


@click.command(name="import")
@click.argument("tarball", type=click.Path(path_type=Path))
@click.argument("reference", required=False)
@handles_errors
def import_(tarball: Path, reference: str | None) -> None:
    """Import a root filesystem tarball as a one-layer image ('-' reads stdin)."""
    local_only("import")
    ctx = make_context()
    source = sys.stdin.buffer if str(tarball) == "-" else tarball
    click.echo(ctx.images.import_rootfs(source, reference))


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.argument("names", nargs=-1, required=True)
def rmi(force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more images."""
    host = daemon_host()
    if host:
        from vmcontainer.cli import remote
        sys.exit(remote.rmi(host, names, force))
    ctx = make_context()
    containers = ctx.store.all()

    def users(image_id: str) -> dict[str, bool]:
        return {c.id: c.state.running for c in containers if c.image_id == image_id}

    code = 0
    for name in names:
        try:
            for item in ctx.images.remove(name, force=force, users=users):
                for k, v in item.items():
                    click.echo(f"{k}: {v}")
        except VmcError as err:
            click.echo(f"Error response from daemon: {err}", err=True)
            code = 1
    sys.exit(code)
