"""``vmcontainer system dial-stdio``: this machine's daemon socket on stdin/stdout.

What an SSH session runs for a remote ``vmcontainer -H ssh://...`` (see
``vmcontainer.cli.sshbridge``), as ``docker system dial-stdio`` is for the docker
CLI. It starts the local daemon on first use like any other command. EOF on stdin
half-closes the socket (so a request's end reaches the daemon); the command ends
when the daemon closes its side.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

import click

from vmcontainer.cli.common import daemon_host
from vmcontainer.cli.interact import copy_stdin
from vmcontainer.errors import VmcError

CHUNK = 65536


@click.group()
def system() -> None:
    """Manage vmcontainer."""


@system.command("dial-stdio")
def dial_stdio() -> None:
    """Proxy the stdio stream to the daemon connection. Should not be invoked
    manually."""
    from vmcontainer.cli.connect import client_url, unix_path

    try:
        path = unix_path(client_url(daemon_host()))
    except VmcError as err:
        click.echo(f"vmcontainer: {err}", err=True)
        sys.exit(1)
    if path is None:
        click.echo("vmcontainer: dial-stdio needs a local unix socket", err=True)
        sys.exit(1)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    threading.Thread(target=copy_stdin, args=(sock,), daemon=True).start()
    out = sys.stdout.fileno()
    while data := sock.recv(CHUNK):
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
    sock.close()

