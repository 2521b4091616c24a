"""The CLI's connection to a vmcontainer daemon: docker-py's low-level APIClient
over the Engine API — the same API the ``docker`` CLI speaks — at the URL
``vmcontainer.cli.connect`` resolves (and, for a local socket nobody answers,
starts a daemon on).

Exit codes and messages follow the docker CLI: 125 when the daemon refuses to
create or start, 126/127 from the start error's text (as the docker CLI derives
them), 1 for other commands' failures.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from vmcontainer.cli.common import daemon_host
from vmcontainer.errors import VmcError

_clients: dict[str, Any] = {}


def _fail_code() -> int:
    ctx = click.get_current_context(silent=True)
    return 125 if ctx is not None and ctx.info_name == "run" else 1


def api() -> Any:
    """The docker-py APIClient for this command's daemon (docker-py is imported
    here: it costs ~0.2 s, which ``--help`` need not pay). Exits 125 (``run``) or
    1 when no daemon answers and none can be started."""
    host = daemon_host()
    key = host or ""
    if key in _clients:
        return _clients[key]
    from vmcontainer.cli.connect import client_url

    try:
        url = client_url(host)
    except VmcError as err:
        click.echo(f"vmcontainer: {err}", err=True)
        sys.exit(_fail_code())
    import docker

    try:
        client = docker.APIClient(base_url=url, version="auto", timeout=None)
    except docker.errors.DockerException as err:
        click.echo(f"Cannot connect to the vmcontainer daemon at {host or url}. Is the "
                   f"daemon running? ({err.__cause__ or err})", err=True)
        sys.exit(_fail_code())
    _clients[key] = client
    return client


def error_text(err: Exception) -> str:
    """The daemon's message of a docker-py APIError (its ``message`` field)."""
    explanation = getattr(err, "explanation", None)
    return str(explanation or err)


def fail(err: Exception, code: int = 1) -> NoReturn:
    click.echo(f"Error response from daemon: {error_text(err)}", err=True)
    sys.exit(code)


def exit_code_for(message: str) -> int:
    """The docker CLI's mapping of a start error to an exit code."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def copy_out(output: Iterator[tuple[bytes | None, bytes | None]]) -> None:
    """Write (stdout, stderr) pairs to this process's stdout and stderr, unbuffered."""
    for out, err in output:
        if out:
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
        if err:
            sys.stderr.buffer.write(err)
            sys.stderr.buffer.flush()


def demux(raw: Any, tty: bool) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(stdout, stderr) pairs from a logs or attach body: Docker's 8-byte frame
    headers (stream byte, three zero bytes, big-endian length) without a TTY, raw
    bytes with one (Engine API v1.45, ContainerAttach "Stream format")."""
    while True:
        if tty:
            data = raw.read(65536)
            if not data:
                return
            yield data, None
            continue
        header = raw.read(8)
        if len(header) < 8:
            return
        stream, length = struct.unpack(">BxxxL", header)
        data = raw.read(length)
        yield (data, None) if stream == 1 else (None, data)
