"""``vmcontainer -H ssh://user@host``: the CLI reaches a daemon through a real OpenSSH
server (Debian's sshd on 127.0.0.1, started here with its own host key and
authorized key), each API connection an SSH session running
``vmcontainer system dial-stdio`` on the "remote" side."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from apihelpers import Daemon
from sshserver import running_sshd


@dataclass
class Ssh:
    url: str
    home: Path  # HOME of the client: its ~/.ssh holds the key and known_hosts


@pytest.fixture(scope="module")
def sshd(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ssh]:
    remote_path = f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"
    # The "remote" vmcontainer is this tree's, not whatever the venv has installed.
    tree = Path(__file__).resolve().parents[2]
    with running_sshd(tmp_path_factory.mktemp("sshd"), {
            "PATH": remote_path, "PYTHONPATH": str(tree),
            "VMCONTAINER_HOST": f"unix://{daemon.sock}",
            "VMCONTAINER_ROOT": str(daemon.root),
            "VMCONTAINER_NETWORK": "user",  # as tests/conftest.py: never bridges here
            "VMCONTAINER_BOOT_DIR": os.environ["VMCONTAINER_BOOT_DIR"]}) as server:
        yield Ssh(f"ssh://root@127.0.0.1:{server.port}", server.home)
        shutil.rmtree(server.home, ignore_errors=True)


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
