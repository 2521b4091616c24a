"""Name resolution on a user-defined network: one dnsmasq per network, listening
on the network's gateway address only, answering the network's containers by
name, ``--network-alias`` and short ID from a hosts file it re-reads on SIGHUP,
and forwarding every other name to the host's resolvers (``/etc/resolv.conf``;
dnsmasq runs in the host's network namespace, so loopback resolvers work).
``domain-needed``: single-label names not on the network are not forwarded.

dnsmasq daemonizes; its pid file lives next to the network's record, so that a
daemon restart finds it again, and removing the network ends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from vmcontainer.errors import System
from vmcontainer.network.hosttools import tool

RESOLV_CONF = Path("/etc/resolv.conf")


def host_resolvers(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    return [ln.split()[1] for ln in lines
            if ln.startswith("nameserver") and len(ln.split()) > 1]


def hosts_text(entries: Iterable[tuple[str, Iterable[str]]]) -> str:
    """``IP name...`` lines for dnsmasq's addn-hosts."""
    return "".join(f"{ip} {' '.join(names)}\n" for ip, names in entries)


def dnsmasq_argv(listen: str, hosts_files: Iterable[Path], pidfile: Path,
                 port: int = 53) -> list[str]:
    """A dnsmasq answering on ``listen``:``port`` from ``hosts_files`` (re-read on
    SIGHUP), forwarding other qualified names to the host's resolvers."""
    return [tool("dnsmasq"), "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
            "--domain-needed", "--no-negcache", "--bind-interfaces",
            f"--listen-address={listen}", "--except-interface=lo",
            *([f"--port={port}"] if port != 53 else []),
            *(f"--addn-hosts={h}" for h in hosts_files), f"--pid-file={pidfile}",
            "--user=root", *(f"--server={s}" for s in host_resolvers())]


def running_pid(pidfile: Path) -> int | None:
    """The PID of the dnsmasq started with ``pidfile``, None when none runs."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"dnsmasq" in cmdline and str(pidfile).encode() in cmdline else None


def running_argv(pidfile: Path) -> list[str] | None:
    """The command line of that dnsmasq, None when none runs."""
    pid = running_pid(pidfile)
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes() if pid else None
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1] if raw else None


def start(argv: list[str]) -> None:
    """Run ``argv`` (dnsmasq daemonizes). Raises System with dnsmasq's message."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       start_new_session=True)
    if r.returncode != 0:
        raise System(f"dnsmasq failed: {r.stderr.strip()}")


def reload(pidfile: Path) -> None:
    """SIGHUP: the running dnsmasq re-reads its hosts files."""
    pid = running_pid(pidfile)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)


def stop(pidfile: Path) -> None:
    """End the dnsmasq of ``pidfile`` (waiting until it has gone) and remove the file."""
    pid = running_pid(pidfile)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(200):  # it is not our child: wait for its /proc entry to go
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.01)
    pidfile.unlink(missing_ok=True)


class Dnsmasq:
    """The dnsmasq of one network; files ``<base>.hosts`` and ``<base>.pid``."""

    def __init__(self, base: Path, listen: str) -> None:
        self.hosts = base.with_name(base.name + ".hosts")
        self.pidfile = base.with_name(base.name + ".pid")
        self.listen = listen

    def pid(self) -> int | None:
        """The running dnsmasq's PID, None when none runs."""
        return running_pid(self.pidfile)

    def write_hosts(self, text: str) -> None:
        tmp = self.hosts.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.hosts)
        reload(self.pidfile)

    def ensure(self, hosts: str) -> None:
        """Write the hosts file and start dnsmasq unless it runs. Raises System,
        Unavailable (no dnsmasq)."""
        self.write_hosts(hosts)
        if not self.pid():
            start(dnsmasq_argv(self.listen, [self.hosts], self.pidfile))

    def stop(self) -> None:
        stop(self.pidfile)
        self.hosts.unlink(missing_ok=True)
