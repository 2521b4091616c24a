"""``docker run --rm busybox true`` on both VM backends in one run: a daemon with
``--backend qemu`` (warm start from a template, and cold: ``VMCONTAINER_WARM_START=0``,
a boot as libvirt's) and one with ``--backend libvirt`` (libvirtd started if none
answers), each on its own temporary data root, medians of ``-n`` runs.

    python bench/backend_latency.py [-n 5]

Measured (TCG, 2 shared cores, libvirt 9.0; medians of 7): qemu 0.44 s, qemu cold
0.41 s (warm start skips containers with a NIC: the default network has one),
libvirt 2.02 s on microvm (2.98 s when it used q35, medians of 10). libvirt's extra
~1.6 s: createXML ~0.35 s and destroy ~1.2 s, most of that this sandbox's PID 1
reaping QEMU late (orphans linger 1-1.8 s; libvirt polls ``kill(pid, 0)`` every
200 ms until the zombie is gone).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "api"))

from apihelpers import Daemon
from backends import ensure_libvirtd
from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.config import Settings

# The daemons here run in the host's network namespace: user-mode networking, so
# that no bridge or nftables table is made there (bench/net_boot.py measures bridge
# mode inside a namespace of its own).
os.environ["VMCONTAINER_NETWORK"] = "user"


def bench(backend: str, archive: Path, n: int, warm: bool = True) -> list[float]:
    with tempfile.TemporaryDirectory(prefix=f"vmc-bench-{backend}-") as tmp:
        d = Daemon(Path(tmp) / "root", Path(tmp) / "d.sock", extra=("--backend", backend),
                   env={"VMCONTAINER_WARM_START": "1" if warm else "0"})
        d.start()
        try:
            subprocess.run(["docker", "load", "-q", "-i", str(archive)], env=d.docker_env,
                           check=True, capture_output=True)
            argv = ["docker", "run", "--rm", "busybox", "true"]
            subprocess.run(argv, env=d.docker_env, check=True)  # warm-up: base disk
            times = []
            for _ in range(n):
                t = time.perf_counter()
                subprocess.run(argv, env=d.docker_env, check=True)
                times.append(time.perf_counter() - t)
            return times
        finally:
            d.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    n = ap.parse_args().n
    ensure_libvirtd()
    # The machine's boot assets, not a kernel build in each temporary root.
    os.environ.setdefault("VMCONTAINER_BOOT_DIR", str(Settings.from_env().boot_dir))
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "busybox.tar"
        write_docker_archive(archive, [busybox_rootfs_tar(["true", "sh"])], ["busybox:latest"],
                             {"Cmd": ["sh"]})
        results = {"qemu": bench("qemu", archive, n),
                   "qemu cold": bench("qemu", archive, n, warm=False),
                   "libvirt": bench("libvirt", archive, n)}
    print(f"docker run --rm busybox true, median of {n}:")
    for backend, times in results.items():
        print(f"  {backend:10s} {statistics.median(times):6.2f} s  "
              f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
