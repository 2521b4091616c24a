"""``vmcontainer -H ssh://user@host``: the CLI reaches a daemon through a real OpenSSH
server (Debian's sshd on 127.0.0.1, started here with its own host key and
authorized key), each API connection an SSH session running
``vmcontainer system dial-stdio`` on the "remote" side."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from apihelpers import Daemon

SSHD = Path("/usr/sbin/sshd")


@dataclass
class Ssh:
    url: str
    home: Path  # HOME of the client: its ~/.ssh holds the key and known_hosts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path.with_suffix(".pub").read_text()


@pytest.fixture(scope="module")
def sshd(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ssh]:
    d = tmp_path_factory.mktemp("sshd")
    host_pub = _keygen(d / "hostkey")
    home = d / "home"
    (home / ".ssh").mkdir(parents=True)
    user_pub = _keygen(home / ".ssh" / "id_ed25519")
    (d / "authorized_keys").write_text(user_pub)
    port = _free_port()
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}")
    remote_path = f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'hostkey'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"SetEnv PATH={remote_path} VMCONTAINER_HOST=unix://{daemon.sock} "
        f"VMCONTAINER_ROOT={daemon.root} VMCONTAINER_NETWORK=user "  # as tests/conftest.py
        f"VMCONTAINER_BOOT_DIR={os.environ['VMCONTAINER_BOOT_DIR']}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=open(d / "sshd.log", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, (d / "sshd.log").read_text()
        assert time.monotonic() < deadline, "sshd did not listen"
        time.sleep(0.05)
    yield Ssh(f"ssh://root@127.0.0.1:{port}", home)
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(home, ignore_errors=True)


def vmc(ssh: Ssh, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("VMCONTAINER_HOST",
                                                             "SSH_AUTH_SOCK")}
    env["HOME"] = str(home or ssh.home)
    return subprocess.run([sys.executable, "-m", "vmcontainer", "-H", ssh.url, *args],
                          capture_output=True, env=env, timeout=120, check=False)


def test_run_over_ssh(sshd: Ssh) -> None:
    r = vmc(sshd, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")


def test_detached_logs_and_rm_over_ssh(sshd: Ssh) -> None:
    r = vmc(sshd, "run", "-d", "--name", "over-ssh", "busybox", "sh", "-c",
            "echo hi; sleep 300")
    assert r.returncode == 0, r.stderr
    assert b"over-ssh" in vmc(sshd, "ps").stdout
    assert vmc(sshd, "logs", "over-ssh").stdout == b"hi\n"
    assert vmc(sshd, "rm", "-f", "over-ssh").returncode == 0


def test_unknown_host_key_is_refused(sshd: Ssh, tmp_path: Path) -> None:
    """No known_hosts entry for the server: refused, not trusted on first use."""
    stranger = tmp_path / "home"
    (stranger / ".ssh").mkdir(parents=True)
    shutil.copy(sshd.home / ".ssh" / "id_ed25519", stranger / ".ssh" / "id_ed25519")
    r = vmc(sshd, "ps", home=stranger)
    assert r.returncode == 1
    assert b"not found in known_hosts" in r.stderr, r.stderr
    assert b"Traceback" not in r.stderr
