"""``-H ssh://[user@]host[:port]``: the Engine API of a daemon on another machine,
over SSH (paramiko).

As the docker CLI's connection helper does, each API connection is one SSH
session running ``vmcontainer system dial-stdio`` on the remote host, which
joins its stdin/stdout to the remote daemon's socket (starting that daemon on
first use, as any local CLI command would). docker-py then speaks HTTP to a
private unix socket in this process, each connection to which is bridged to a
new session: attach streams and half-closes work as on a local socket.

Host keys are checked against ``~/.ssh/known_hosts`` (and the system's): an
unknown or changed host key is refused, never accepted silently — this is a
security product. ``~/.ssh/config`` supplies HostName, User, Port and
IdentityFile as OpenSSH would; keys and the agent are used as paramiko finds them.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from vmcontainer.errors import System

log = logging.getLogger(__name__)

#: What the remote host runs for each connection (docker's is
#: ``docker system dial-stdio``).
REMOTE_COMMAND = "vmcontainer system dial-stdio"
CHUNK = 65536


class SshBridge:
    """A private unix socket at ``path`` whose connections are SSH sessions
    to ``url``'s host running REMOTE_COMMAND. Threads are daemons; the socket
    directory is removed at exit."""

    _open: ClassVar[dict[str, SshBridge]] = {}

    def __init__(self, url: str) -> None:
        import paramiko  # type: ignore[import-untyped]

        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise System(f"invalid SSH host {url!r}: use ssh://[user@]host[:port]")
        if parts.path not in ("", "/"):
            raise System(f"invalid SSH host {url!r}: a path is not supported")
        conf = _ssh_config(parts.hostname)
        self._client = paramiko.SSHClient()
        self._client.load_system_host_keys()
        known = Path.home() / ".ssh" / "known_hosts"
        if known.is_file():
            self._client.load_host_keys(str(known))
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self._client.connect(
                conf.get("hostname", parts.hostname),
                port=parts.port or int(conf.get("port", 22)),
                username=parts.username or conf.get("user"),
                password=parts.password,
                key_filename=conf.get("identityfile"),
                timeout=30, banner_timeout=30, auth_timeout=30)
        except paramiko.SSHException as err:
            raise System(f"cannot connect to {url}: {err}") from err
        except OSError as err:
            raise System(f"cannot connect to {url}: {err.strerror or err}") from err
        transport = self._client.get_transport()
        assert transport is not None
        transport.set_keepalive(30)
        self._transport = transport
        self._dir = Path(tempfile.mkdtemp(prefix="vmcontainer-ssh-"))
        self.path = self._dir / "api.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="ssh-accept").start()
        atexit.register(self.close)

    @classmethod
    def open(cls, url: str) -> SshBridge:
        """The bridge for ``url``, made on first use. Raises System when the SSH
        connection or authentication fails or the host key is unknown."""
        if url not in cls._open:
            cls._open[url] = cls(url)
        return cls._open[url]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        with contextlib.suppress(Exception):
            self._client.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge, args=(conn,), daemon=True,
                             name="ssh-bridge").start()

    def _bridge(self, conn: socket.socket) -> None:
        """One API connection. Errors after the session opened end it quietly:
        they come from the command exiting (the bridge is closed at exit while
        docker-py's pooled connections are still open), not from the user."""
        try:
            self._bridge_session(conn)
        except Exception:
            log.debug("SSH bridge connection ended", exc_info=True)
            with contextlib.suppress(OSError):
                conn.close()

    def _bridge_session(self, conn: socket.socket) -> None:
        try:
            chan = self._transport.open_session()
            chan.exec_command(REMOTE_COMMAND)
        except Exception as err:  # paramiko raises its own and socket errors
            print(f"vmcontainer: SSH session failed: {err}", file=sys.stderr)
            conn.close()
            return
        up = threading.Thread(target=_local_to_channel, args=(conn, chan), daemon=True)
        up.start()
        try:
            while data := chan.recv(CHUNK):
                conn.sendall(data)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            while text := chan.recv_stderr(CHUNK):
                sys.stderr.buffer.write(text)
                sys.stderr.buffer.flush()
        except OSError:
            pass
        up.join(timeout=5)
        chan.close()
        conn.close()


def _local_to_channel(conn: socket.socket, chan: Any) -> None:
    try:
        while data := conn.recv(CHUNK):
            chan.sendall(data)
        chan.shutdown_write()
    except Exception:
        with contextlib.suppress(Exception):
            chan.close()


def _ssh_config(hostname: str) -> dict[str, Any]:
    """``~/.ssh/config``'s settings for ``hostname`` (lower-case keys), {} if none."""
    import paramiko

    path = Path.home() / ".ssh" / "config"
    if not path.is_file():
        return {}
    conf = paramiko.SSHConfig.from_path(str(path)).lookup(hostname)
    out: dict[str, Any] = dict(conf)
    if "identityfile" in out:
        out["identityfile"] = [os.path.expanduser(p) for p in out["identityfile"]]
    return out
