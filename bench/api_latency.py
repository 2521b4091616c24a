"""Engine API latency through the real docker CLI: ``docker ps`` with 20 running
containers, ``docker run -d`` and ``docker exec <one of them> true``, vmcontainer's
daemon against a reference engine, medians from one run.

    python bench/api_latency.py [-n 10] [--containers 20] [--reference unix:///path.sock]

The reference is the engine at ``--reference`` (e.g. the real Docker Engine that
``../shared/tools/refdocker.sh`` starts), else podman's Docker-compatible service
(``podman system service`` with runc and cgroupfs). Both get the same busybox image
(Debian's busybox-static) through ``docker load``. Ratios are vmcontainer / reference.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.config import Settings

# The daemons here run in the host's network namespace: user-mode networking, so
# that no bridge or nftables table is made there (bench/net_boot.py measures bridge
# mode inside a namespace of its own).
os.environ["VMCONTAINER_NETWORK"] = "user"

RLIMIT = 4096


def docker(sock: Path, *args: str, check: bool = True) -> float:
    t = time.perf_counter()
    subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": f"unix://{sock}"},
                   check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=300)
    return time.perf_counter() - t


def wait_for(sock: Path, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        if sock.exists():
            try:
                docker(sock, "version")
                return
            except subprocess.CalledProcessError:
                pass
        time.sleep(0.1)
    raise SystemExit(f"{proc.args} did not answer on {sock}")


@contextmanager
def service(argv: list[str], sock: Path, log: Path,
            env: dict[str, str] | None = None) -> Iterator[Path]:
    """Run an engine serving ``sock`` for the ``with`` block; its stderr to ``log``."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(sock, proc)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def vmcontainer_daemon(tmp: Path) -> contextlib.AbstractContextManager[Path]:
    sock = tmp / "vmc.sock"
    return service([sys.executable, "-m", "vmcontainer", "daemon", "-H", f"unix://{sock}"],
                   sock, tmp / "vmc.log",
                   env={**os.environ, "VMCONTAINER_ROOT": str(tmp / "vmc-root"),
                        # the machine's kernel cache, not a new build under tmp
                        "VMCONTAINER_BOOT_DIR": str(Settings.from_env().boot_dir)})


def podman_service(tmp: Path) -> contextlib.AbstractContextManager[Path]:
    """podman's Docker-compatible service. Its containers get nofile and nproc
    limits of 4096: podman's defaults (nofile 1048576, nproc from the host) are
    above the hard limits of a sandbox without CAP_SYS_RESOURCE, where runc then
    fails with "error setting rlimit type 7: operation not permitted" (even the
    host's own hard limits are refused there; 4096 is accepted)."""
    sock, root = tmp / "podman.sock", tmp / "podman"
    limits = [f"{name}={RLIMIT}:{RLIMIT}" for name in ("nofile", "nproc")]
    conf = tmp / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = [" +
                    ", ".join(f'"{lim}"' for lim in limits) + "]\n")
    return service(["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"),
                    "--runtime", "runc", "--cgroup-manager=cgroupfs", "--events-backend=file",
                    "system", "service", "--time=0", f"unix://{sock}"],
                   sock, tmp / "podman.log", env={**os.environ, "CONTAINERS_CONF": str(conf)})


def measure(sock: Path, archive: Path, n: int, count: int) -> dict[str, float]:
    docker(sock, "load", "-i", str(archive))
    runs = [docker(sock, "run", "-d", "-m", "128m", "busybox", "sleep", "3600")
            for _ in range(n)]
    for _ in range(count - n):
        docker(sock, "run", "-d", "-m", "128m", "busybox", "sleep", "3600")
    docker(sock, "ps")  # warm
    ps = [docker(sock, "ps") for _ in range(n)]
    ids = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True,
                         env={**os.environ, "DOCKER_HOST": f"unix://{sock}"}).stdout.split()
    docker(sock, "exec", ids[0], "true")  # warm
    execs = [docker(sock, "exec", ids[0], "true") for _ in range(n)]
    if ids:
        docker(sock, "rm", "-f", *ids)
    return {"run -d": statistics.median(runs), "ps": statistics.median(ps),
            "exec": statistics.median(execs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--containers", type=int, default=20)
    ap.add_argument("--reference", default="", help="DOCKER_HOST of the reference engine")
    args = ap.parse_args()
    if not shutil.which("docker"):
        raise SystemExit("the docker CLI is needed")
    with tempfile.TemporaryDirectory(prefix="vmc-apibench-") as t:
        tmp = Path(t)
        archive = tmp / "busybox.tar"
        write_docker_archive(archive, [busybox_rootfs_tar()], ["busybox:latest"], {"Cmd": ["sh"]})
        with vmcontainer_daemon(tmp) as sock:
            vmc = measure(sock, archive, args.n, args.containers)
        pod: dict[str, float] | None = None
        ref_name = "reference"
        if args.reference:
            pod = measure(Path(args.reference.removeprefix("unix://")), archive, args.n,
                          args.containers)
        elif shutil.which("podman"):
            ref_name = "podman"
            with podman_service(tmp) as sock:
                pod = measure(sock, archive, args.n, args.containers)
    print(f"{args.containers} running containers; medians of {args.n}")
    for key in ("ps", "run -d", "exec"):
        line = f"docker {key:7s} vmcontainer {vmc[key]:.3f}s"
        if pod:
            line += f"   {ref_name} {pod[key]:.3f}s   ratio {vmc[key] / pod[key]:.2f}"
        print(line)
    if pod is None:
        print("no reference: pass --reference or install podman and runc")


if __name__ == "__main__":
    main()
