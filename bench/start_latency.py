"""Start latency: ``vmcontainer run --rm busybox true`` (through the daemon the
first command starts, as on a user's machine) against a bare QEMU boot of
the same kernel + initramfs to guest userspace and exit, medians from one run.

    python bench/start_latency.py [-n 5]

The bare boot runs the agent in probe mode (``vmcontainer.probe=1``: it reaches
userspace, says HELLO on its port and reboots, which ends QEMU through
``-no-reboot``) with the same QEMU flags vmcontainer uses; the bench reads the port
as vmcontainer would (virtio-serial holds the guest's write until a reader is there). The ratio is
vmcontainer / bare; the issue's target is ≤ 1.3.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.config import Settings
from vmcontainer.engine.start import KERNEL_CMDLINE
from vmcontainer.vm.bootassets import ensure_boot_assets
from vmcontainer.vm.guestkernel import LAPIC_TIMER_PARAM, kernel_accepts
from vmcontainer.vm.host import host_tsc_khz
from vmcontainer.vm.qemuargs import qemu_argv
from vmcontainer.vm.spec import ChannelSpec, MachineSpec

# The daemons here run in the host's network namespace: user-mode networking, so
# that no bridge or nftables table is made there (bench/net_boot.py measures bridge
# mode inside a namespace of its own).
os.environ["VMCONTAINER_NETWORK"] = "user"


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - t


def timed_bare_boot(argv: list[str], run_dir: Path) -> float:
    """QEMU start to QEMU exit, reading the agent port like the host does."""
    sock_path = run_dir / "agent.sock"
    sock_path.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=run_dir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    with socket.socket(socket.AF_UNIX) as sock:
        while True:
            try:
                sock.connect(str(sock_path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.002)
        sock.recv(65536)  # HELLO (the agent's only message); then hang up
    proc.wait(timeout=120)
    return time.perf_counter() - t


def stop_daemon(pidfile: Path) -> None:
    """SIGTERM the daemon the first ``vmcontainer`` command started; wait for it."""
    if not pidfile.exists():
        return
    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    n = ap.parse_args().n
    settings = Settings.from_env()
    assets = ensure_boot_assets(settings.boot_dir)
    accel = os.environ.get("VMCONTAINER_ACCEL", "tcg")
    with tempfile.TemporaryDirectory(prefix="vmc-bench-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "VMCONTAINER_ROOT": str(root / "root"),
               "VMCONTAINER_HOST": f"unix://{root / 'vmc.sock'}",
               "VMCONTAINER_BOOT_DIR": str(settings.boot_dir), "VMCONTAINER_ACCEL": accel}
        archive = root / "busybox.tar"
        write_docker_archive(archive, [busybox_rootfs_tar()], ["busybox:latest"], {"Cmd": ["sh"]})
        vmc = [sys.executable, "-m", "vmcontainer"]
        subprocess.run([*vmc, "load", "-i", str(archive)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([*vmc, "run", "--rm", "busybox", "true"], env=env, check=True)  # warm-up
        spec = MachineSpec(
            name="bench", kernel=assets.kernel, initramfs=assets.initramfs,
            cmdline=f"{KERNEL_CMDLINE} vmcontainer.probe=1",
            memory_mib=settings.memory_mib, vcpus=1, run_dir=root,
            channels=(ChannelSpec("org.vmcontainer.agent.0", "agent.sock"),),
        )
        bare_argv = qemu_argv(spec, "qemu-system-x86_64", accel, host_tsc_khz(),
                              kernel_accepts(assets.kernel, LAPIC_TIMER_PARAM))
        runs, bares = [], []
        try:
            for _ in range(n):
                runs.append(timed([*vmc, "run", "--rm", "busybox", "true"], env=env))
                bares.append(timed_bare_boot(bare_argv, root))
        finally:
            stop_daemon(root / "root" / "vmcontainer.pid")
    run_m, bare_m = statistics.median(runs), statistics.median(bares)
    print(f"accelerator: {accel}; {n} runs each")
    print(f"vmcontainer run --rm busybox true: median {run_m:.3f}s "
          f"(min {min(runs):.3f}s, max {max(runs):.3f}s)")
    print(f"bare QEMU boot to userspace+exit: median {bare_m:.3f}s "
          f"(min {min(bares):.3f}s, max {max(bares):.3f}s)")
    print(f"ratio vmcontainer/bare: {run_m / bare_m:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
