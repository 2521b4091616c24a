"""Running the host tools this room relies on (skopeo, mke2fs, debugfs).

Each call is a blocking ``subprocess.run`` with an argv list (never a shell). A
missing tool raises ToolMissing (Unavailable); a non-zero exit raises ToolFailed
(System) carrying the tool's own message.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vmcontainer.image.errors import ToolFailed, ToolMissing

_LOGRUS_MSG = re.compile(r'level=(?:fatal|error) msg="((?:[^"\\]|\\.)*)"')


def tool_message(stderr: bytes) -> str:
    """The human part of a tool's error output: skopeo's logrus ``msg="..."`` text if
    present, else the last non-empty line (at most 500 characters)."""
    text = stderr.decode(errors="replace")
    found = _LOGRUS_MSG.findall(text)
    if found:
        return str(found[-1]).replace('\\"', '"')
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        timeout: float | None = None) -> bytes:
    """Run ``argv``; return its stdout. Raises ToolMissing or ToolFailed."""
    path = shutil.which(argv[0], path=os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin")
    if path is None:
        raise ToolMissing(f"{argv[0]} is not installed")
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run([path, *argv[1:]], capture_output=True, env=full_env,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise ToolFailed(f"{argv[0]} did not finish within {timeout} s") from err
    if proc.returncode != 0:
        message = tool_message(proc.stderr)
        raise ToolFailed(f"{argv[0]} failed (exit {proc.returncode}): {message}",
                         proc.stderr.decode(errors="replace")[-4000:])
    return proc.stdout


def run_lines(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              on_line: Callable[[str], None], on_idle: Callable[[], None] | None = None,
              idle_s: float = 0.25) -> None:
    """Run ``argv``, calling ``on_line`` with each line of its stdout as it comes and
    ``on_idle`` whenever ``idle_s`` seconds pass without one (progress polling).
    The process is killed if a callback raises. Raises ToolFailed (the tool's own
    message) on a non-zero exit."""
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full_env)
    assert proc.stdout is not None and proc.stderr is not None
    buffered = b""
    try:
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], idle_s)
            if not ready:
                if on_idle is not None:
                    on_idle()
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                on_line(line.decode(errors="replace"))
        stderr = proc.stderr.read()
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if code != 0:
        raise ToolFailed(f"{argv[0]} failed (exit {code}): {tool_message(stderr)}",
                         stderr.decode(errors="replace")[-4000:])


def skopeo_copy(source: str, dest: str, tmpdir: Path) -> None:
    """``skopeo copy`` between two local transports (``docker-archive:``, ``oci:``, ``dir:``).

    ``--insecure-policy``: local archives carry no signatures, so the host's trust
    policy has nothing to check and is not required to exist. Temporary files go
    to ``tmpdir``. Raises ToolMissing or ToolFailed (the message is skopeo's).
    """
    run(["skopeo", "--insecure-policy", "--tmpdir", str(tmpdir), "copy", "--quiet",
         source, dest], env={"TMPDIR": str(tmpdir)})
