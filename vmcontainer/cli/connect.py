"""Which daemon a CLI command talks to, and starting one on first use.

The ``vmcontainer`` CLI is a client of the Engine API, as the ``docker`` CLI is:
``-H``/``VMCONTAINER_HOST`` names the daemon (``unix:///path`` or
``ssh://[user@]host[:port]``); without either it is the default socket of
``vmcontainer daemon`` (``/run/vmcontainer.sock`` as root, else in
``$XDG_RUNTIME_DIR``).

Unlike Docker, a local unix socket that nobody answers is not an error: the CLI
starts ``vmcontainer daemon -H unix://<that path>`` in its own session (output to
``<data root>/daemon.log``, working directory ``/``) and waits for it to answer. The
daemon inherits the command's user, environment (``VMCONTAINER_ROOT``,
``VMCONTAINER_BOOT_DIR``, made absolute, ``VMCONTAINER_NETWORK``, ``VMCONTAINER_BACKEND``,
``PATH``, proxies) and namespaces: started as root it runs in bridge mode (the
root default) and makes its bridges in the network namespace the command ran in,
where it then stays for its life. The guest kernel is
built here first, so that its minutes-long first build shows a progress bar on the
user's terminal rather than in a log file. Concurrent first uses serialise on a
lock file in the data root: exactly one daemon starts.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from vmcontainer.errors import System, VmcError

#: How long a starting daemon may take to answer (it chooses the accelerator,
#: which boots a probe VM the first time after a host boot, and adopts VMs).
START_TIMEOUT_S = 120.0


class DaemonUnavailable(VmcError):
    """No daemon answers at the host and none could be started there."""

    http_status = 500


def default_host() -> str:
    from vmcontainer.api.daemonconfig import default_host as daemon_default

    return daemon_default()


def unix_path(host: str) -> Path | None:
    """The socket path of a ``unix://`` host, None for other schemes."""
    url = urlsplit(host)
    return Path(url.path or url.netloc) if url.scheme == "unix" else None


def answers(path: Path) -> bool:
    """Whether something accepts connections on the unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def ensure_daemon(path: Path) -> None:
    """Start a daemon on ``path`` unless one answers there.

    Raises DaemonUnavailable (with the end of the daemon's log) when the started
    daemon exits or does not answer within START_TIMEOUT_S; VmcError from the
    boot-asset build (e.g. a missing guest kernel)."""
    if answers(path):
        return
    from vmcontainer.cli.progress import BuildProgress
    from vmcontainer.config import Settings
    from vmcontainer.vm.bootassets import ensure_boot_assets

    settings = Settings.from_env()
    progress = BuildProgress()
    try:
        ensure_boot_assets(settings.boot_dir, progress)
        settings.root.mkdir(parents=True, exist_ok=True)
        lock = _lock(settings.root / "daemon-autostart.lock")
    except OSError as err:
        where = err.filename or settings.root
        raise DaemonUnavailable(f"cannot start the vmcontainer daemon: {where}: "
                                f"{err.strerror or err}") from None
    finally:
        progress.close()
    try:
        if not answers(path):  # another command may have started it meanwhile
            env = {**os.environ, **{k: os.path.abspath(v) for k, v in os.environ.items()
                                    if k in ("VMCONTAINER_ROOT", "VMCONTAINER_BOOT_DIR") and v}}
            _start_daemon(path.absolute(), settings.root / "daemon.log", env)
    finally:
        os.close(lock)


def _start_daemon(path: Path, log_path: Path, env: dict[str, str]) -> None:
    """The daemon runs in ``/`` (it must not keep the user's working directory
    busy), so ``env`` and ``path`` carry absolute paths."""
    with open(log_path, "ab") as log:
        start = log.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "vmcontainer", "daemon", "-H", f"unix://{path}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd="/", env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(path):
        if proc.poll() is not None:
            raise DaemonUnavailable(
                f"the vmcontainer daemon did not start: {_tail(log_path, start)}")
        if time.monotonic() > deadline:
            raise DaemonUnavailable(f"the vmcontainer daemon did not answer on {path} "
                                    f"within {START_TIMEOUT_S:.0f} s; see {log_path}")
        time.sleep(0.02)


def _tail(log_path: Path, start: int) -> str:
    """The daemon's last error line (its log format: ``time LEVEL name: message``)."""
    with open(log_path, "rb") as f:
        f.seek(start)
        lines = [ln.decode(errors="replace").strip() for ln in f if ln.strip()]
    errors = [ln for ln in lines if " ERROR " in ln] or lines or [f"see {log_path}"]
    last = errors[-1]
    return last.split(": ", 1)[1] if " ERROR " in last and ": " in last else last


def _lock(path: Path) -> int:
    """An exclusive lock on ``path`` (created), held until the fd is closed."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        raise
    return fd


def client_url(host: str | None) -> str:
    """The URL docker-py should use for ``host`` (None: the default socket),
    starting a local daemon or an SSH bridge as needed.

    Raises DaemonUnavailable, System (SSH failures), InvalidParameter-like
    VmcErrors for hosts of an unknown scheme."""
    target = host or default_host()
    scheme = target.partition("://")[0] if "://" in target else ""
    if scheme == "unix":
        path = unix_path(target)
        assert path is not None
        ensure_daemon(path)
        return f"unix://{path}"
    if scheme == "ssh":
        from vmcontainer.cli.sshbridge import SshBridge

        return f"unix://{SshBridge.open(target).path}"
    raise System(f"unsupported daemon host {target!r}: use unix:///path or "
                 "ssh://[user@]host[:port] (for tcp://, use the docker CLI with TLS)")
