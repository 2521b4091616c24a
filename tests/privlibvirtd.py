"""A private libvirtd (with its virtlogd) inside a network namespace a test made,
for bridge-mode tests on the libvirt backend: the taps the daemon makes in that
namespace must be opened by a QEMU in the same one, which the host's libvirtd
(in the host's namespace) cannot spawn.

The pair runs in its own mount namespace (``unshare --mount``, private
propagation) where empty tmpfs cover libvirt's runtime, state, cache and log
directories and its domain/network/secret definitions: it neither sees nor
touches the host libvirtd's domains, sockets, pid files or logs. Its API socket
(``unix_sock_dir``) and both pid files lie in ``state`` (a test's temporary
directory), so the test reaches it from outside as ``uri``; the vmcontainer
daemon runs under ``prefix`` (``nsenter`` into both namespaces) because the
domains' agent sockets and pid files are in the private directories. ``stop``
destroys what domains are left, ends both daemons and waits for them: the mount
namespace, with its tmpfs, goes with its last process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

# Covered by empty tmpfs in the private mount namespace (those that exist here).
PRIVATE_DIRS = ("/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt",
                "/etc/libvirt/qemu", "/etc/libvirt/secrets", "/etc/libvirt/storage")

_SETUP = """set -eu
state=$1; shift
for d in "$@"; do
    [ -d "$d" ] && mount -t tmpfs -o mode=0755 tmpfs "$d"
done
virtlogd -d -p "$state/virtlogd.pid"
libvirtd -d -p "$state/libvirtd.pid" -f "$state/libvirtd.conf"
"""


class PrivateLibvirtd:
    """libvirtd + virtlogd in network namespace ``netns`` and a mount namespace of
    their own; ``state``: a directory for its socket, pid files, config and log."""

    def __init__(self, netns: str, state: Path) -> None:
        self.netns, self.state = netns, state
        self.uri = f"qemu+unix:///system?socket={state}/libvirt-sock"
        self._pid = 0

    @property
    def prefix(self) -> tuple[str, ...]:
        """The command a process runs under to be in both namespaces."""
        return ("nsenter", f"--target={self._pid}", "--mount", "--net")

    def _virsh(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True,
                              text=True, timeout=60, check=False)

    def start(self, timeout: float = 60) -> None:
        """Start both; raises RuntimeError (with libvirtd's log) when it does not
        answer within ``timeout`` seconds."""
        (self.state / "libvirtd.conf").write_text(
            f'unix_sock_dir = "{self.state}"\n'
            f'log_outputs = "3:file:{self.state}/libvirtd.log"\n')
        subprocess.run(["ip", "netns", "exec", self.netns, "unshare", "--mount",
                        "--propagation", "private", "sh", "-c", _SETUP, "setup",
                        str(self.state), *PRIVATE_DIRS], check=True, timeout=60)
        deadline = time.monotonic() + timeout
        while self._virsh("version").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private libvirtd did not answer:\n{self.log_text()}")
            time.sleep(0.2)
        self._pid = int((self.state / "libvirtd.pid").read_text())

    def log_text(self) -> str:
        log = self.state / "libvirtd.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def domains(self) -> list[str]:
        """Names of the running domains."""
        return self._virsh("list", "--name").stdout.split()

    def stop(self, timeout: float = 30) -> None:
        """Destroy the domains left, end libvirtd and virtlogd, and wait for both."""
        for name in self.domains():
            self._virsh("destroy", name)
        pids = []
        for name in ("libvirtd", "virtlogd"):
            try:
                pid = int((self.state / f"{name}.pid").read_text())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for pid in pids:
            while Path(f"/proc/{pid}").exists():
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + timeout
                time.sleep(0.1)


@contextlib.contextmanager
def temp_netns(prefix: str) -> Iterator[str]:
    """A network namespace named ``prefix`` + 8 hex digits, loopback up, deleted after."""
    ns = prefix + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


@contextlib.contextmanager
def libvirtd_for(backend: str, netns: str, state: Path) -> Iterator[PrivateLibvirtd | None]:
    """On the libvirt ``backend``, a PrivateLibvirtd in ``netns`` (QEMU must open the
    taps a bridge-mode daemon makes there; the system libvirtd is in the host's
    namespace), stopped after; asserts no domain was left running. None on qemu."""
    if backend != "libvirt":
        yield None
        return
    libvirtd = PrivateLibvirtd(netns, state)
    libvirtd.start()
    try:
        yield libvirtd
    finally:
        left = libvirtd.domains()
        libvirtd.stop()
        assert not left, f"domains left running: {left}"
