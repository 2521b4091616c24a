"""Fleet (issue "Fast start", "Benchmarks" and "Done when"): many idle containers at once.

    python bench/fleet.py [--fleet 50] [--parallel 20] [--no-cold]

Two vmcontainer daemons, each started as the tests start one
(``tests/api/apihelpers.Daemon``: ``python -m vmcontainer daemon`` with a data root
of its own, user-mode networking), one cloning VM templates (warm), one with
``VMCONTAINER_WARM_START=0`` (cold), and the reference Docker Engine (runc,
``/work/shared/tools/refdocker.sh``), all driven through the real ``docker`` CLI,
one engine at a time (no fleet slows another's figures):

- ``--parallel`` containers started at once (``docker run -d ... sleep 100000``,
  all in flight together): wall time until every one returned;
- ``--fleet`` idle containers (``docker run -d -m 128m busybox sleep 100000``, the
  default network, two started at a time): host PSS per container with 1 and with
  ``--fleet`` running (vmcontainer: its QEMU process's ``Pss`` in
  ``/proc/PID/smaps_rollup``; Docker: the container's process plus its containerd
  shim), median and sum — for warm also the template RAM files on ``/dev/shm``,
  which no process's PSS counts while only clones map them;
- ``docker ps`` latency with the fleet running (median of 10);
- how many of the fleet answer ``docker exec NAME true``;
- ratios of each vmcontainer figure to Docker's from the same run.

Needs root (the reference engine runs in a network namespace).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "api"))

from apihelpers import Daemon
from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.config import Settings
from vmcontainer.engine.warm import shm_dir

IMAGE = "vmcbench/busybox:latest"
REFDOCKER = Path("/work/shared/tools/refdocker.sh")
GUEST_MIB = 128
IDLE = ("sleep", "100000")


class Engine:
    """One Docker API endpoint, driven through the ``docker`` CLI; its containers
    are named ``prefix``…"""

    def __init__(self, label: str, host: str, prefix: str = "vmcfleet-") -> None:
        self.label = label
        self.prefix = prefix
        self.env = {**os.environ, "DOCKER_HOST": host}

    def docker(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                             timeout=300)
        if check and out.returncode != 0:
            raise RuntimeError(f"{self.label}: docker {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def timed(self, *args: str) -> float:
        t = time.perf_counter()
        self.docker(*args)
        return time.perf_counter() - t

    def remove_ours(self) -> None:
        ids = self.docker("ps", "-aq", "--filter", f"name={self.prefix}").split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)

    def pss_kib(self, name: str) -> int:
        """PSS of the container's host processes, KiB."""
        pid = int(self.docker("inspect", "-f", "{{.State.Pid}}", name).strip())
        pids = [pid]
        if self.label == "docker":  # runc: the process and its containerd shim
            pids.append(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        return sum(pss_kib(p) for p in pids)


def pss_kib(pid: int) -> int:
    """``Pss`` of process ``pid`` (``/proc/PID/smaps_rollup``), KiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def stats(xs: Sequence[float], unit: str = "s", scale: float = 1.0) -> str:
    m = statistics.median(xs) * scale
    return f"median {m:.3f}{unit} (min {min(xs) * scale:.3f}{unit}, n={len(xs)})"


def parallel_start(e: Engine, count: int, image: str = IMAGE) -> float:
    """Wall time of ``count`` concurrent ``docker run -d`` until all returned."""
    t = time.perf_counter()
    procs = [subprocess.Popen(["docker", "run", "-d", "--name", f"{e.prefix}p{i}", "-m",
                               f"{GUEST_MIB}m", image, *IDLE], env=e.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(count)]
    errors = [p.stderr.read().decode() for p in procs if p.wait() != 0 and p.stderr]
    took = time.perf_counter() - t
    if errors:
        raise RuntimeError(f"{e.label}: parallel start failed: {errors[0]}")
    return took


def fleet(e: Engine, count: int, report: Callable[[str], None], image: str = IMAGE,
          shm: Path | None = None) -> dict[str, float]:
    """Start ``count`` idle containers (two at a time); PSS at 1 and at ``count``
    (KiB), ``docker ps`` latency (s), how many answer ``docker exec NAME true``;
    ``shm``: a directory of template RAM files whose size to add (KiB)."""
    names = [f"{e.prefix}f{i}" for i in range(count)]
    run = ["run", "-d", "-m", f"{GUEST_MIB}m", image, *IDLE]
    e.docker(*run[:2], "--name", names[0], *run[2:])
    time.sleep(3)  # idle: the guest settled after its start
    out = {"pss1": float(e.pss_kib(names[0]))}
    for i in range(1, count, 2):
        batch = [subprocess.Popen(["docker", *run[:2], "--name", n, *run[2:]], env=e.env,
                                  stdout=subprocess.DEVNULL) for n in names[i:i + 2]]
        if any(p.wait() != 0 for p in batch):
            raise RuntimeError(f"{e.label}: starting container {i} of the fleet failed")
    time.sleep(5)
    pss = [e.pss_kib(n) for n in names]
    out["pssN"] = statistics.median(pss)
    out["pssN_total"] = float(sum(pss))
    out["shm"] = float(sum(f.stat().st_blocks * 512 for f in shm.iterdir())) / 1024 \
        if shm is not None and shm.is_dir() else 0.0
    ps = [e.timed("ps") for _ in range(10)]
    out["ps"] = statistics.median(ps)
    answered = sum(subprocess.run(["docker", "exec", n, "true"], env=e.env,
                                  capture_output=True, timeout=120).returncode == 0
                   for n in names)
    out["exec_ok"] = float(answered)
    shm_text = f" + template RAM files {out['shm'] / 1024:.0f} MiB" if out["shm"] else ""
    report(f"  {e.label}: PSS/container 1: {out['pss1'] / 1024:.1f} MiB, {count}: median "
           f"{out['pssN'] / 1024:.1f} MiB (sum {out['pssN_total'] / 1024:.0f} MiB{shm_text}); "
           f"docker ps at {count}: {stats(ps)}; docker exec answered {answered}/{count}")
    return out


def reference_engine(prefix: str = "vmcfleet-") -> Engine:
    out = subprocess.run(["bash", str(REFDOCKER)], capture_output=True, text=True, check=True)
    host = out.stdout.split("DOCKER_HOST=", 1)[1].split()[0]
    return Engine("docker", host, prefix)


def until_warm(e: Engine, *run_args: str, image: str = IMAGE) -> None:
    """Run containers (``run_args`` before the image) until one took the warm path:
    the first start of a machine layout builds its template in the background."""
    name = f"{e.prefix}w"
    for _ in range(120):
        e.docker("run", "--name", name, *run_args, image, "true")
        path = e.docker("inspect", "-f", "{{.VM.Path}}", name).strip()
        e.docker("rm", name)
        if path == "warm":
            return
        time.sleep(0.5)
    raise RuntimeError(f"{e.label}: no template was built")


def start_daemon(base: Path, label: str, warm: bool) -> tuple[Daemon, Engine]:
    """A vmcontainer daemon as the tests start one, user-mode networking."""
    # the kernel cache of this user's default data root, built once per machine
    os.environ.setdefault("VMCONTAINER_BOOT_DIR", str(Settings.from_env().boot_dir))
    d = Daemon(base / label, base / f"{label}.sock",
               env={"VMCONTAINER_WARM_START": "1" if warm else "0",
                    "VMCONTAINER_NETWORK": "user"})
    d.start(timeout=900)  # the first start on a machine builds the guest kernel
    return d, Engine(label, f"unix://{d.sock}")


class Report:
    """Lines printed as they come, and all of them again at the end (``summary``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def summary(self) -> None:
        print("\nsummary:\n" + "\n".join(self.lines))


def load_image(engines: Sequence[Engine], base: Path) -> None:
    """Write the suite's busybox as IMAGE (a docker-archive in ``base``), load it into
    every engine (its bench containers removed first) and run it once there: base
    disk built, kernel cached."""
    archive = base / "busybox.tar"
    write_docker_archive(archive, [busybox_rootfs_tar()], [IMAGE], {"Cmd": ["sh"]})
    for e in engines:
        e.remove_ours()
        e.docker("load", "-i", str(archive))
        e.docker("run", "--rm", IMAGE, "true")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold daemon")
    a = ap.parse_args()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="vmc-fleet-") as tmp:
        base = Path(tmp)
        daemons = [start_daemon(base, "vmc-warm", True)]
        if not a.no_cold:
            daemons.append(start_daemon(base, "vmc-cold", False))
        ref = reference_engine()
        engines = [*(e for _, e in daemons), ref]
        warm = daemons[0][1]
        try:
            load_image(engines, base)
            until_warm(warm, "-m", f"{GUEST_MIB}m")  # the fleet's machine layout
            par = {}
            for e in engines:
                par[e.label] = parallel_start(e, a.parallel)
                e.remove_ours()
            report(f"{a.parallel} containers started in parallel (docker run -d): " + ", ".join(
                f"{e.label} {par[e.label]:.2f}s ({par[e.label] / par[ref.label]:.2f}x docker)"
                for e in engines))
            report(f"idle containers ({GUEST_MIB} MiB guests), {a.fleet} running:")
            res = {}
            for e in engines:
                shm = shm_dir(daemons[0][0].root) if e is warm else None
                res[e.label] = fleet(e, a.fleet, report, shm=shm)
                e.remove_ours()
            for e in engines[:-1]:
                r, d = res[e.label], res[ref.label]
                report(f"  ratios {e.label}/docker: PSS at 1 {r['pss1'] / d['pss1']:.1f}, "
                       f"at {a.fleet} {r['pssN'] / d['pssN']:.1f}; docker ps "
                       f"{r['ps'] / d['ps']:.2f}")
        finally:
            for e in engines:
                e.remove_ours()
            for d, _ in daemons:
                d.stop(timeout=120)
    report.summary()


if __name__ == "__main__":
    main()
