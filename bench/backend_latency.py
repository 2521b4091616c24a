"""``docker run --rm busybox true`` on both VM backends in one run: a daemon with
``--backend qemu`` and one with ``--backend libvirt`` (libvirtd started if none
answers), each on its own temporary data root, medians of ``-n`` runs.

    python bench/backend_latency.py [-n 5]
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


def bench(backend: str, archive: Path, n: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix=f"vmc-bench-{backend}-") as tmp:
        d = Daemon(Path(tmp) / "root", Path(tmp) / "d.sock", extra=("--backend", backend))
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
        results = {b: bench(b, archive, n) for b in ("qemu", "libvirt")}
    print(f"docker run --rm busybox true, median of {n}:")
    for backend, times in results.items():
        print(f"  {backend:8s} {statistics.median(times):6.2f} s  "
              f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
