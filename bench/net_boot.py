"""What hot-plug costs at boot: ``docker run --rm busybox true`` on user-mode
networking (microvm, one virtio-mmio NIC) against bridge mode (q35 with PCIe root
ports for hot-plug, one tap NIC), medians of the guest's ``StartedMs`` (QEMU start
to the container process running, from ``docker inspect``'s ``VM``) and of the
whole ``docker run``. Bridge mode runs inside a network namespace this script
creates and deletes (root only).

    python bench/net_boot.py [-n 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "api"))

from apihelpers import Daemon
from imagebuild import busybox_rootfs_tar, write_docker_archive


def measure(d: Daemon, n: int) -> tuple[float, float]:
    env = d.docker_env
    started, wall = [], []
    for i in range(n):
        name = f"boot{i}"
        t0 = time.monotonic()
        subprocess.run(["docker", "run", "--name", name, "busybox", "true"], env=env,
                       check=True, capture_output=True)
        wall.append((time.monotonic() - t0) * 1000)
        info = json.loads(subprocess.run(["docker", "inspect", name], env=env, check=True,
                                         capture_output=True, text=True).stdout)[0]
        started.append(info["VM"]["StartedMs"])
        subprocess.run(["docker", "rm", name], env=env, check=True, capture_output=True)
    return statistics.median(started), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("VMCONTAINER_BOOT_DIR", "/var/lib/vmcontainer/boot")
    apps = [a for a in subprocess.run(["/bin/busybox", "--list"], capture_output=True,
                                      text=True).stdout.split() if a != "busybox"]
    ns = "vmcb" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            archive = base / "bb.tar"
            write_docker_archive(archive, [busybox_rootfs_tar(apps)], ["busybox:latest"],
                                 {"Cmd": ["sh"], "Env": ["PATH=/bin:/sbin:/usr/bin"]})
            results = {}
            for mode, prefix in (("user", ()), ("bridge", ("ip", "netns", "exec", ns))):
                d = Daemon(base / mode, base / f"{mode}.sock", prefix=prefix,
                           env={"VMCONTAINER_NETWORK": mode})
                d.start()
                try:
                    d.request("POST", "/images/load", archive.read_bytes())
                    results[mode] = measure(d, args.n)
                finally:
                    d.stop()
            for mode, (started, wall) in results.items():
                machine = "microvm" if mode == "user" else "q35 + hot-plug slots"
                print(f"{mode:6} ({machine}): StartedMs median {started:.0f} ms, "
                      f"docker run median {wall:.0f} ms")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


if __name__ == "__main__":
    main()
