"""Pull time of one image from a local registry (Debian's docker-registry on
127.0.0.1): vmcontainer's daemon (``docker pull`` through the real docker CLI) vs
``skopeo copy`` alone (into a fresh ``dir:``) vs ``podman pull`` (runc, cgroupfs,
``--tls-verify=false``), each from an empty store every time; medians from one run,
ratios against skopeo.

    python bench/pull_latency.py [-n 5] [--mb 32 | --debian]

The image: busybox-static plus one layer of ``--mb`` MB of random (incompressible)
data, or with ``--debian`` a Debian bookworm minbase rootfs built by mmdebstrap from
this machine's apt sources (cached for the day, as the tests do).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_latency import docker, vmcontainer_daemon
from imagebuild import Entry, busybox_rootfs_tar, layer_tar, write_docker_archive
from localregistry import LocalRegistry


def timed(action: Callable[[], object]) -> float:
    t = time.perf_counter()
    action()
    return time.perf_counter() - t


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="pulls per tool")
    parser.add_argument("--mb", type=int, default=32, help="size of the random layer")
    parser.add_argument("--debian", action="store_true",
                        help="pull a Debian minbase image (mmdebstrap) instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pull-bench-") as tmp_name:
        tmp = Path(tmp_name)
        archive = tmp / "image.tar"
        if args.debian:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" /
                                   "integration"))
            from conftest import debian_rootfs

            write_docker_archive(archive, [debian_rootfs().read_bytes()], ["bench:latest"],
                                 {"Cmd": ["bash"]})
        else:
            write_docker_archive(archive, [busybox_rootfs_tar(), layer_tar(
                [Entry("data", data=os.urandom(args.mb << 20))])], ["bench:latest"],
                {"Cmd": ["sh"]})
        registry = LocalRegistry(tmp / "registry").start()
        try:
            registry.seed(archive, "bench:latest")
            ref = f"{registry.host}/bench:latest"
            results: dict[str, list[float]] = {"skopeo copy": [], "vmcontainer": []}

            def skopeo_once(i: int) -> float:
                dest = tmp / f"skopeo-{i}"
                t = timed(lambda: run("skopeo", "--insecure-policy", "copy", "--quiet",
                                      "--src-tls-verify=false", f"docker://{ref}",
                                      f"dir:{dest}"))
                shutil.rmtree(dest)
                return t

            results["skopeo copy"] = [skopeo_once(i) for i in range(args.n)]
            with vmcontainer_daemon(tmp) as sock:
                for _ in range(args.n):
                    results["vmcontainer"].append(docker(sock, "pull", ref))
                    docker(sock, "rmi", ref)
            if shutil.which("podman"):
                results["podman pull"] = []
                for i in range(args.n):
                    root = tmp / f"podman-{i}"
                    base = ["podman", "--root", str(root / "storage"), "--runroot",
                            str(root / "run"), "--runtime", "runc",
                            "--cgroup-manager=cgroupfs"]
                    results["podman pull"].append(timed(lambda b=base: run(  # type: ignore[misc]
                        *b, "pull", "--quiet", "--tls-verify=false", ref)))
                    subprocess.run([*base, "rmi", "-a", "-f"], capture_output=True)
                    shutil.rmtree(root, ignore_errors=True)
        finally:
            registry.stop()
    base_median = statistics.median(results["skopeo copy"])
    what = "Debian minbase" if args.debian else f"{args.mb} MB + busybox"
    print(f"pull of a {what} image from a local registry, "
          f"{args.n} runs each (median seconds, ratio to skopeo copy):")
    for tool, times in results.items():
        median = statistics.median(times)
        print(f"  {tool:<12} {median:7.3f} s   x{median / base_median:5.2f}")


if __name__ == "__main__":
    main()
