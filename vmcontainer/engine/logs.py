"""Container logs in Docker's json-file format (one JSON object per line:
``{"log": "<text>", "stream": "stdout"|"stderr", "time": "<RFC 3339 nano>"}``).

As Docker's json-file driver does, output is cut into entries at newlines, and a
line longer than 16 KiB is split into several entries (moby daemon/logger
copier.go: bufSize 16 KiB). The ``log`` text is the bytes decoded as UTF-8 with
invalid sequences replaced, as Go's JSON encoder does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vmcontainer.engine.state import now_rfc3339

MAX_LINE = 16 * 1024


@dataclass(frozen=True)
class LogEntry:
    stream: str
    data: bytes
    time: str


class JsonFileWriter:
    """Appends entries for both streams to one file; call ``close()`` at exit to
    write partial last lines.

    With ``stored_path`` it also records there, after every write, how many bytes
    of each stream are in the log as whole entries (``stored``; a partial line is
    not), which is what the host acknowledges to the agent; ``resume=True`` goes on
    from the counts recorded there (a restarted daemon adopting the container),
    otherwise they start at 0 (a new run). Raises OSError when a file cannot be
    opened."""

    def __init__(self, path: Path, stored_path: Path | None = None, *,
                 resume: bool = False) -> None:
        self._fh: BinaryIO = open(path, "ab")  # noqa: SIM115 — closed in close()
        self._partial: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._stored = dict.fromkeys(("stdout", "stderr"), 0)
        self._recorded = (-1, -1)
        self._stored_fd = -1
        if stored_path is not None:
            if resume:
                self._stored["stdout"], self._stored["stderr"] = read_stored(stored_path)
            self._stored_fd = os.open(stored_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._record()

    @property
    def stored(self) -> tuple[int, int]:
        """Bytes of stdout and of stderr written as whole entries."""
        return self._stored["stdout"], self._stored["stderr"]

    def _record(self) -> None:
        if self._stored_fd >= 0 and self.stored != self._recorded:
            os.pwrite(self._stored_fd, b"%020d %020d\n" % self.stored, 0)
            self._recorded = self.stored

    def _emit(self, stream: str, data: bytes) -> None:
        entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": now_rfc3339()}
        self._fh.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
        self._stored[stream] += len(data)

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream]
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                break
            self._emit(stream, bytes(buf[: nl + 1]))
            del buf[: nl + 1]
        while len(buf) >= MAX_LINE:
            self._emit(stream, bytes(buf[:MAX_LINE]))
            del buf[:MAX_LINE]
        self._fh.flush()
        self._record()  # after the entries are in the file: a crash between repeats, never loses

    def close(self) -> None:
        for stream, buf in self._partial.items():
            if buf:
                self._emit(stream, bytes(buf))
                buf.clear()
        self._fh.close()
        self._record()
        if self._stored_fd >= 0:
            os.close(self._stored_fd)
            self._stored_fd = -1


def read_stored(path: Path) -> tuple[int, int]:
    """The counts a JsonFileWriter recorded in ``path`` (stdout, stderr); (0, 0) when
    the file is missing or unreadable (the agent then sends all it kept)."""
    try:
        out, err = path.read_bytes().split()[:2]
        return int(out), int(err)
    except (OSError, ValueError):
        return 0, 0


def read_log(path: Path) -> Iterator[LogEntry]:
    """Every entry of a json-file log, oldest first; skips a torn last line."""
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            yield LogEntry(d["stream"], d["log"].encode("utf-8"), d["time"])


class LogFollower:
    """Reads a json-file log incrementally through one open file, so entries are
    still readable after the container (and its directory) is removed."""

    def __init__(self, path: Path) -> None:
        try:
            self._fh: BinaryIO | None = open(path, "rb")  # noqa: SIM115 — see close()
        except FileNotFoundError:
            self._fh = None
        self._partial = b""

    def read_new(self) -> list[LogEntry]:
        """Entries completed since the last call, oldest first."""
        if self._fh is None:
            return []
        data = self._partial + self._fh.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            out.append(LogEntry(d["stream"], d["log"].encode("utf-8"), d["time"]))
        return out

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
