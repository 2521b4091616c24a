"""``vmcontainer pull NAME[:TAG|@DIGEST]`` and ``vmcontainer push NAME[:TAG]`` through
the daemon (Engine API ImageCreate, ImagePush).

The daemon streams Docker's progress JSON (see ``vmcontainer.api.pullstream``); on a
terminal each layer gets a rich progress bar, otherwise lines are printed as the
docker CLI prints them without a terminal (``02e3dcbe34d4: Pull complete``).
Credentials come from ``~/.docker/config.json`` as docker-py reads it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click

from vmcontainer.cli import client


def _plain(lines: Iterable[dict[str, Any]], quiet: bool) -> None:
    for doc in lines:
        if "error" in doc:
            raise click.ClickException(str(doc["error"]))
        if quiet or doc.get("status") == "Downloading":
            continue
        prefix = f"{doc['id']}: " if doc.get("id") else ""
        click.echo(prefix + str(doc.get("status", "")))


def _bars(lines: Iterable[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(stderr=False)
    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=console) as bars:
        for doc in lines:
            if "error" in doc:
                raise click.ClickException(str(doc["error"]))
            layer, status = doc.get("id"), str(doc.get("status", ""))
            if not layer or status.startswith("Pulling from"):
                bars.console.print((f"{layer}: " if layer else "") + status)
                continue
            if layer not in tasks:
                tasks[layer] = bars.add_task(f"{layer}: {status}", total=None)
            detail = doc.get("progressDetail") or {}
            done = status in ("Download complete", "Pull complete", "Already exists")
            bars.update(tasks[layer], description=f"{layer}: {status}",
                        completed=detail.get("current", 0), total=detail.get("total"))
            if done:
                bars.update(tasks[layer], total=1, completed=1)


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("reference")
def pull(reference: str, quiet: bool) -> None:
    """Download an image from a registry."""
    import docker.errors

    try:
        lines = client.api().pull(reference, stream=True, decode=True)
        if sys.stdout.isatty() and not quiet:
            _bars(lines)
        else:
            _plain(lines, quiet)
    except docker.errors.APIError as err:
        client.fail(err)
    if quiet:
        click.echo(reference)


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("reference")
def push(reference: str, quiet: bool) -> None:
    """Upload an image to a registry (credentials from ``docker login``)."""
    import docker.errors

    try:
        repo, _, tag = reference.rpartition(":") if ":" in reference.rpartition("/")[2] \
            else (reference, "", "")
        import docker.auth

        api = client.api()
        registry, _ = docker.auth.resolve_repository_name(repo)
        # docker-py sends no X-Registry-Auth without stored credentials; Docker wants one
        auth = docker.auth.resolve_authconfig(api._auth_configs, registry) or {}
        lines = api.push(repo, tag=tag or None, stream=True, decode=True,
                         auth_config=dict(auth))
        for doc in lines:
            if "error" in doc:
                raise click.ClickException(str(doc["error"]))
            if quiet or "aux" in doc or doc.get("status") == "Pushing":
                continue
            prefix = f"{doc['id']}: " if doc.get("id") else ""
            click.echo(prefix + str(doc.get("status", "")))
    except docker.errors.APIError as err:
        client.fail(err)
    if quiet:
        click.echo(reference)
