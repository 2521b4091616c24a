"""``vmcontainer images | load | import | rmi`` through the daemon."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

from vmcontainer.cli import client
from vmcontainer.cli.format import human_duration, table


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
def images(quiet: bool) -> None:
    """List images, newest first."""
    listing = [(i["Id"], i.get("RepoTags") or [], time.time() - i["Created"], i["Size"])
               for i in client.api().images()]
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for image_id, repo_tags, age, size in sorted(listing, key=lambda i: i[2]):
        short = image_id.removeprefix("sha256:")[:12]
        if quiet:
            click.echo(short)
            continue
        for tag in repo_tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append([repo, t, short, f"{human_duration(age)} ago", _size(size)])
    if not quiet:
        click.echo(table(rows))


def _source(path: Path | None, what: str) -> BinaryIO:
    """The archive from ``path`` or stdin ('-' or None), as a file that docker-py
    streams (a file's length as Content-Length, a pipe chunked)."""
    if path is None or str(path) == "-":
        if sys.stdin.isatty():
            click.echo(f"Error response from daemon: requested {what} from stdin, but "
                       "stdin is empty", err=True)
            sys.exit(1)
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as err:
        click.echo(f"Error: open {path}: {(err.strerror or str(err)).lower()}", err=True)
        sys.exit(1)


@click.command()
@click.option("-i", "--input", "archive", default=None, type=click.Path(path_type=Path),
              help="Read from tar archive file, instead of STDIN (docker save or OCI archive)")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
def load(archive: Path | None, quiet: bool) -> None:
    """Load an image from a tar archive or STDIN."""
    import docker.errors

    data = _source(archive, "load")
    try:
        for line in client.api().load_image(data, quiet=quiet):
            if "error" in line:
                click.echo(line["error"], err=True)
                sys.exit(1)
            text = line.get("stream") or line.get("status") or ""
            if text:
                click.echo(text.rstrip("\n"))
    except docker.errors.APIError as err:
        client.fail(err)


@click.command(name="import")
@click.argument("tarball", type=click.Path(path_type=Path))
@click.argument("reference", required=False)
def import_(tarball: Path, reference: str | None) -> None:
    """Import a root filesystem tarball as a one-layer image ('-' reads stdin)."""
    import docker.errors

    data = _source(tarball, "import")
    repo, tag = (None, None)
    if reference:
        name, _, last = reference.rpartition(":")
        repo, tag = (name, last) if name and "/" not in last else (reference, None)
    try:
        out = client.api().import_image_from_data(data, repository=repo, tag=tag)
    except docker.errors.APIError as err:
        client.fail(err)
    for line in out.splitlines() if isinstance(out, str) else [json.dumps(out)]:
        doc = json.loads(line)
        if "error" in doc:
            click.echo(f"Error response from daemon: {doc['error']}", err=True)
            sys.exit(1)
        if doc.get("status"):
            click.echo(doc["status"])


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.argument("names", nargs=-1, required=True)
def rmi(force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more images."""
    import docker.errors

    api, code = client.api(), 0
    for name in names:
        try:
            for item in api.remove_image(name, force=force):
                for k, v in item.items():
                    click.echo(f"{k}: {v}")
        except docker.errors.APIError as err:
            click.echo(f"Error response from daemon: {client.error_text(err)}", err=True)
            code = 1
    sys.exit(code)
