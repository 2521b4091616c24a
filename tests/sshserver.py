"""A real OpenSSH server on 127.0.0.1 for tests (Debian's sshd, started with its own
host key, one authorized client key and root login by key only), and the client side
that trusts exactly that host key: a HOME whose ``.ssh`` holds the key pair and a
known_hosts file naming the server.

Used by ``vmcontainer -H ssh://`` (tests/api/test_ssh.py) and by the libvirt backend's
``qemu+ssh://`` remote host (tests/api/test_libvirt.py)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class SshServer:
    """``port`` on 127.0.0.1; ``home``: the client's HOME (``.ssh/id_ed25519`` and
    ``.ssh/known_hosts``)."""

    port: int
    home: Path

    @property
    def key(self) -> Path:
        return self.home / ".ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.home / ".ssh" / "known_hosts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (and ``path``.pub); returns the public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path.with_suffix(".pub").read_text()


@contextlib.contextmanager
def running_sshd(workdir: Path, env: dict[str, str]) -> Iterator[SshServer]:
    """sshd in the foreground on a free port, its files under ``workdir``; sessions
    get ``env`` (sshd's SetEnv: no spaces in values). Stopped on exit."""
    host_pub = keygen(workdir / "hostkey")
    home = workdir / "home"
    (home / ".ssh").mkdir(parents=True)
    server = SshServer(free_port(), home)
    (workdir / "authorized_keys").write_text(keygen(server.key))
    server.known_hosts.write_text(f"[127.0.0.1]:{server.port} {host_pub}")
    setenv = " ".join(f"{k}={v}" for k, v in env.items())
    (workdir / "sshd_config").write_text(
        f"Port {server.port}\nListenAddress 127.0.0.1\nHostKey {workdir / 'hostkey'}\n"
        f"PidFile {workdir / 'sshd.pid'}\nAuthorizedKeysFile {workdir / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        + (f"SetEnv {setenv}\n" if setenv else ""))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = workdir / "sshd.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(workdir / "sshd_config")],
                                stderr=err)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", server.port)) == 0:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("sshd did not listen within 20s")
            time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)
