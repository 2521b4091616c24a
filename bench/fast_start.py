"""Fast start (issue "Fast start"), cold and warm paths: one run, side by side, with ratios.

    python bench/fast_start.py [-n 15] [--parallel 20] [--fleet 50]

Prints, each for vmcontainer cold (a daemon of its own with
``VMCONTAINER_WARM_START=0``), vmcontainer warm (another, cloning VM templates;
each measured once its template is built) — both through the real ``docker`` CLI —
and for the reference Docker Engine (``/work/shared/tools/refdocker.sh``, runc):

- ``docker run --rm IMAGE true``: median/min over ``-n`` runs; and a bare QEMU
  boot to guest userspace ready (the agent's HELLO, probe mode) with the same
  kernel, initramfs and QEMU flags, as the floor;
- ``--parallel`` containers started at once (``docker run -d``, all in flight
  together): wall time until every one runs;
- host PSS of one idle container (``/proc/PID/smaps_rollup``: for vmcontainer the
  QEMU process; for Docker the container's process plus its containerd shim) with
  1 and with ``--fleet`` containers running, 128 MiB guests;
- ``docker ps`` latency with ``--fleet`` containers running, and whether every one
  of them answers ``docker exec``.

Needs root (the reference engine runs in a network namespace). The image is the
test suite's busybox, loaded into both engines as ``vmcbench/busybox:latest``.
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

from imagebuild import busybox_rootfs_tar, write_docker_archive
from start_latency import timed_bare_boot

from vmcontainer.config import Settings
from vmcontainer.engine.start import KERNEL_CMDLINE
from vmcontainer.guestlink.protocol import PORT_NAME
from vmcontainer.vm.bootassets import ensure_boot_assets
from vmcontainer.vm.guestkernel import LAPIC_TIMER_PARAM, kernel_accepts
from vmcontainer.vm.host import host_tsc_khz
from vmcontainer.vm.qemuargs import qemu_argv
from vmcontainer.vm.spec import ChannelSpec, MachineSpec

# The daemons here run in the host's network namespace: user-mode networking, so
# that no bridge or nftables table is made there (bench/net_boot.py measures bridge
# mode inside a namespace of its own).
os.environ["VMCONTAINER_NETWORK"] = "user"

IMAGE = "vmcbench/busybox:latest"
PREFIX = "vmcbench-"
REFDOCKER = Path("/work/shared/tools/refdocker.sh")
GUEST_MIB = 128


class Engine:
    """One Docker API endpoint, driven through the ``docker`` CLI."""

    def __init__(self, label: str, host: str) -> None:
        self.label = label
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
        ids = self.docker("ps", "-aq", "--filter", f"name={PREFIX}").split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)

    def pss_kib(self, name: str) -> int:
        """PSS of the container's host processes, KiB."""
        pid = int(self.docker("inspect", "-f", "{{.State.Pid}}", name).strip())
        pids = [pid]
        if self.label == "docker":  # runc: the process and its containerd shim
            pids.append(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        return sum(_pss(p) for p in pids)


def _pss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def stats(xs: Sequence[float], unit: str = "s", scale: float = 1.0) -> str:
    m = statistics.median(xs) * scale
    return f"median {m:.3f}{unit} (min {min(xs) * scale:.3f}{unit}, n={len(xs)})"


def parallel_start(e: Engine, count: int) -> float:
    """Wall time of ``count`` concurrent ``docker run -d`` until all returned."""
    t = time.perf_counter()
    procs = [subprocess.Popen(["docker", "run", "-d", "--name", f"{PREFIX}p{i}", "-m",
                               f"{GUEST_MIB}m", IMAGE, "sleep", "3600"], env=e.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(count)]
    errors = [p.stderr.read().decode() for p in procs if p.wait() != 0 and p.stderr]
    took = time.perf_counter() - t
    if errors:
        raise RuntimeError(f"{e.label}: parallel start failed: {errors[0]}")
    return took


def fleet(e: Engine, count: int, report: Callable[[str], None]) -> dict[str, float]:
    """Start ``count`` idle containers (two at a time); PSS at 1 and at ``count``,
    ``docker ps`` latency, ``docker exec`` in every one."""
    names = [f"{PREFIX}f{i}" for i in range(count)]
    run = ["run", "-d", "-m", f"{GUEST_MIB}m", IMAGE, "sleep", "3600"]
    e.docker(*run[:2], "--name", names[0], *run[2:])
    time.sleep(3)  # idle: the guest settled after boot
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
    ps = [e.timed("ps") for _ in range(10)]
    out["ps"] = statistics.median(ps)
    answered = sum(e.docker("exec", n, "echo", "ok", check=False).strip() == "ok" for n in names)
    out["exec_ok"] = float(answered)
    report(f"  {e.label}: PSS/container 1: {out['pss1'] / 1024:.1f} MiB, {count}: median "
           f"{out['pssN'] / 1024:.1f} MiB (sum {out['pssN_total'] / 1024:.0f} MiB); "
           f"docker ps at {count}: {stats(ps)}; docker exec answered {answered}/{count}")
    return out


def bare_boots(n: int, root: Path) -> list[float]:
    settings = Settings.from_env()
    assets = ensure_boot_assets(settings.boot_dir)
    accel = os.environ.get("VMCONTAINER_ACCEL", "tcg")
    spec = MachineSpec(name="bench", kernel=assets.kernel, initramfs=assets.initramfs,
                       cmdline=f"{KERNEL_CMDLINE} vmcontainer.probe=1", memory_mib=GUEST_MIB,
                       vcpus=1, run_dir=root, channels=(ChannelSpec(PORT_NAME, "agent.sock"),))
    argv = qemu_argv(spec, "qemu-system-x86_64", accel, host_tsc_khz(),
                     kernel_accepts(assets.kernel, LAPIC_TIMER_PARAM))
    return [timed_bare_boot(argv, root) for _ in range(n)]


def start_vmcontainer(base: Path, warm: bool) -> tuple[subprocess.Popen[bytes], Engine]:
    label = "vmc-warm" if warm else "vmc-cold"
    sock = base / f"{label}.sock"
    env = {**os.environ, "VMCONTAINER_ROOT": str(base / label),
           "VMCONTAINER_WARM_START": "1" if warm else "0"}
    log = open(base / f"{label}.log", "wb")  # noqa: SIM115 - lives as long as the daemon
    proc = subprocess.Popen([sys.executable, "-m", "vmcontainer", "daemon", "-H",
                             f"unix://{sock}"], env=env, stdout=log, stderr=log)
    e = Engine(label, f"unix://{sock}")
    for _ in range(600):
        if subprocess.run(["docker", "info"], env=e.env, capture_output=True).returncode == 0:
            return proc, e
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"vmcontainer daemon did not start: {(base / f'{label}.log').read_text()}")


def until_warm(e: Engine, *run_args: str) -> None:
    """Run containers (``run_args`` before the image) until one took the warm path:
    the first start of a machine size builds its template in the background."""
    for _ in range(120):
        e.docker("run", "--name", f"{PREFIX}w", *run_args, IMAGE, "true")
        path = e.docker("inspect", "-f", "{{.VM.Path}}", f"{PREFIX}w").strip()
        e.docker("rm", f"{PREFIX}w")
        if path == "warm":
            return
        time.sleep(0.5)
    raise RuntimeError(f"{e.label}: no template was built")


def reference_engine() -> Engine:
    out = subprocess.run(["bash", str(REFDOCKER)], capture_output=True, text=True, check=True)
    host = out.stdout.split("DOCKER_HOST=", 1)[1].split()[0]
    return Engine("docker", host)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--fleet", type=int, default=50)
    a = ap.parse_args()
    lines: list[str] = []

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory(prefix="vmc-fast-") as tmp:
        base = Path(tmp)
        archive = base / "busybox.tar"
        write_docker_archive(archive, [busybox_rootfs_tar()], [IMAGE], {"Cmd": ["sh"]})
        daemons = [start_vmcontainer(base, warm) for warm in (False, True)]
        cold, warm = (e for _, e in daemons)
        ref = reference_engine()
        engines = (cold, warm, ref)
        try:
            for e in engines:
                e.remove_ours()
                e.docker("load", "-i", str(archive))
                e.docker("run", "--rm", IMAGE, "true")  # warm-up (kernel build, base disk)
            until_warm(warm)
            until_warm(warm, "-m", f"{GUEST_MIB}m")  # the fleet's size
            runs: dict[str, list[float]] = {e.label: [] for e in engines}
            for _ in range(a.n):  # interleaved: all see the same machine load
                for e in engines:
                    runs[e.label].append(e.timed("run", "--rm", IMAGE, "true"))
            bare = bare_boots(a.n, base)
            c, w, r, b = (statistics.median(x) for x in
                          (runs[cold.label], runs[warm.label], runs[ref.label], bare))
            report(f"`docker run --rm {IMAGE} true` (docker CLI):")
            report(f"  vmcontainer cold: {stats(runs[cold.label])}")
            report(f"  vmcontainer warm: {stats(runs[warm.label])}")
            report(f"  docker:           {stats(runs[ref.label])}")
            report(f"  bare QEMU boot to guest ready + exit, same kernel: {stats(bare)}")
            report(f"  ratios: cold/docker {c / r:.2f}, warm/docker {w / r:.2f}, "
                   f"cold/bare {c / b:.2f}, warm/bare {w / b:.2f}")
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
                res[e.label] = fleet(e, a.fleet, report)
                e.remove_ours()
            for e in (cold, warm):
                report(f"  ratios {e.label}/docker: PSS at {a.fleet} "
                       f"{res[e.label]['pssN'] / res[ref.label]['pssN']:.1f}, docker ps "
                       f"{res[e.label]['ps'] / res[ref.label]['ps']:.2f}")
        finally:
            for e in engines:
                e.remove_ours()
            for daemon, _ in daemons:
                daemon.terminate()
                daemon.wait(timeout=60)
    print("\nsummary:\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
