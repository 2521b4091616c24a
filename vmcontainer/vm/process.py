"""A hypervisor process watched through a pidfd (Linux ≥ 5.3).

Not asyncio's subprocess transport: that one kills its child when the event loop
closes, and VMs must outlive the daemon that started them. A pidfd also watches a
process that is not our child — a VM adopted after a daemon restart — whose exit
status then cannot be known (``returncode`` -1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path


class WatchedProcess:
    """``pid``; ``popen``: the Popen of our own child (it reaps it), None for a
    process adopted from an earlier daemon."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self._popen = popen
        self._signalled = 0
        self.returncode: int | None = None
        self._exited = asyncio.get_running_loop().create_future()
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = -1
            self._finish()
            return
        asyncio.get_running_loop().add_reader(self._pidfd, self._finish)

    def _finish(self) -> None:
        if self._pidfd >= 0:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if self._popen is not None:
            rc = self._popen.wait()
        else:  # not our child: its status is unknowable, except that we killed it
            rc = -self._signalled if self._signalled else -1
        self.returncode = rc
        if not self._exited.done():
            self._exited.set_result(rc)

    def release(self) -> None:
        """Stop watching; ``wait`` then never returns."""
        if self._pidfd >= 0:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    async def wait(self) -> int:
        """The exit status (negative signal number when killed; -1 when unknown)."""
        return int(await asyncio.shield(self._exited))

    def send_signal(self, signum: int) -> None:
        """Signal the process unless it has ended (never a reused PID: pidfd)."""
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)
                self._signalled = signum

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def hypervisor_alive(name: str, pid: int) -> bool:
    """Whether process ``pid`` is still the hypervisor of machine ``name`` (not a
    reused PID): its command line names the machine (``-name NAME``)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return name.encode() in cmdline.split(b"\0")
