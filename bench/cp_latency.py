"""``docker cp`` latency and throughput through the real docker CLI: into and out
of a running container, and of a stopped one — cold (a maintenance boot of its
VM) and warm (the maintenance VM still up, as for the second request of one
``docker cp``) — plus 32 MiB each way; medians of ``-n`` runs.

    python bench/cp_latency.py [-n 5] [--reference unix:///path.sock]

With ``--reference`` (e.g. the engine ``../shared/tools/refdocker.sh`` starts) the
same is measured there, beside.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from api_latency import docker, vmcontainer_daemon
from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.engine.maintenance import LINGER_S


def measure(sock: Path, archive: Path, tmp: Path, n: int) -> dict[str, float]:
    docker(sock, "load", "-i", str(archive))
    small, big = tmp / "small.txt", tmp / "big.bin"
    small.write_text("hello\n")
    big.write_bytes(os.urandom(32 << 20))
    out: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        out.setdefault(key, []).append(seconds)

    for i in range(n):
        name = f"cpbench{i}"
        docker(sock, "run", "-d", "--name", name, "busybox", "sleep", "3600")
        add("running: into", docker(sock, "cp", str(small), f"{name}:/tmp/"))
        add("running: out", docker(sock, "cp", f"{name}:/tmp/small.txt", str(tmp / "o")))
        add("running: 32 MiB into (MiB/s)", 32 / docker(sock, "cp", str(big), f"{name}:/tmp/"))
        add("running: 32 MiB out (MiB/s)", 32 / docker(sock, "cp", f"{name}:/tmp/big.bin",
                                                      str(tmp / "b")))
        docker(sock, "rm", "-f", name)
        docker(sock, "create", "--name", name, "busybox", "true")
        time.sleep(LINGER_S + 1)
        add("stopped, cold: into", docker(sock, "cp", str(small), f"{name}:/tmp/"))
        add("stopped, warm: out", docker(sock, "cp", f"{name}:/tmp/small.txt", str(tmp / "o")))
        time.sleep(LINGER_S + 1)
        add("stopped, cold: out", docker(sock, "cp", f"{name}:/tmp/small.txt", str(tmp / "o")))
        docker(sock, "rm", "-f", name)
    return {key: statistics.median(v) for key, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--reference", default="", help="DOCKER_HOST of a reference engine")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmc-cpbench-") as t:
        tmp = Path(t)
        archive = tmp / "busybox.tar"
        write_docker_archive(archive, [busybox_rootfs_tar()], ["busybox:latest"],
                             {"Cmd": ["sh"]})
        with vmcontainer_daemon(tmp) as sock:
            vmc = measure(sock, archive, tmp, args.n)
        ref = (measure(Path(args.reference.removeprefix("unix://")), archive, tmp, args.n)
               if args.reference else None)
    print(f"docker cp, medians of {args.n} (seconds unless MiB/s)")
    for key, value in vmc.items():
        line = f"  {key:32s} vmcontainer {value:8.3f}"
        if ref is not None:
            line += f"   reference {ref[key]:8.3f}"
        print(line)


if __name__ == "__main__":
    main()
