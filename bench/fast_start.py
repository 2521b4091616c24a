"""Fast start (issue "Fast start"), cold and warm paths: one run, side by side, with ratios.

    python bench/fast_start.py [-n 15] [--parallel 20] [--fleet 50]

(``--parallel 0``, ``--fleet 0``: leave that part out.)

Prints, each for vmcontainer cold (a daemon of its own with
``VMCONTAINER_WARM_START=0``), vmcontainer warm (another, cloning VM templates;
each measured once its template is built) — both through the real ``docker`` CLI —
and for the reference Docker Engine (``/work/shared/tools/refdocker.sh``, runc):

- ``docker run --rm IMAGE true``: median/min over ``-n`` runs; and a bare QEMU
  boot to guest userspace ready (the agent's HELLO, probe mode) with the same
  kernel, initramfs and QEMU flags, as the floor;
- ``docker run --rm -v VOLUME:/data IMAGE true`` (a named volume, as compose
  services have): median/min over ``-n`` runs;
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fleet import (
    Engine,
    Report,
    fleet,
    load_image,
    parallel_start,
    reference_engine,
    stats,
    until_warm,
)
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
GUEST_MIB = 128
VOLUME = "vmcbench-vol"


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
    # the kernel cache of this user's default data root, built once per machine
    os.environ.setdefault("VMCONTAINER_BOOT_DIR", str(Settings.from_env().boot_dir))
    sock = base / f"{label}.sock"
    env = {**os.environ, "VMCONTAINER_ROOT": str(base / label),
           "VMCONTAINER_WARM_START": "1" if warm else "0"}
    log = open(base / f"{label}.log", "wb")  # noqa: SIM115 - lives as long as the daemon
    proc = subprocess.Popen([sys.executable, "-m", "vmcontainer", "daemon", "-H",
                             f"unix://{sock}"], env=env, stdout=log, stderr=log)
    e = Engine(label, f"unix://{sock}", PREFIX)
    for _ in range(600):
        if subprocess.run(["docker", "info"], env=e.env, capture_output=True).returncode == 0:
            return proc, e
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"vmcontainer daemon did not start: {(base / f'{label}.log').read_text()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--parallel", type=int, default=20)
    ap.add_argument("--fleet", type=int, default=50)
    a = ap.parse_args()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="vmc-fast-") as tmp:
        base = Path(tmp)
        daemons = [start_vmcontainer(base, warm) for warm in (False, True)]
        cold, warm = (e for _, e in daemons)
        ref = reference_engine(PREFIX)
        engines = (cold, warm, ref)
        try:
            load_image(engines, base)
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
            until_warm(warm, "-v", f"{VOLUME}:/data")
            vruns: dict[str, list[float]] = {e.label: [] for e in engines}
            for _ in range(a.n):
                for e in engines:
                    vruns[e.label].append(e.timed("run", "--rm", "-v", f"{VOLUME}:/data",
                                                  IMAGE, "true"))
            vc, vw, vr = (statistics.median(vruns[e.label]) for e in engines)
            report(f"`docker run --rm -v {VOLUME}:/data {IMAGE} true` (docker CLI):")
            for e, label in zip(engines, ("vmcontainer cold", "vmcontainer warm", "docker"),
                                strict=True):
                report(f"  {label + ':':17} {stats(vruns[e.label])}")
            report(f"  ratios: cold/docker {vc / vr:.2f}, warm/docker {vw / vr:.2f}, "
                   f"warm/cold {vw / vc:.2f}")
            if a.parallel:
                parallel(engines, a.parallel, report)
            if a.fleet:
                fleets(engines, a.fleet, report)
        finally:
            for e in engines:
                e.remove_ours()
                e.docker("volume", "rm", "-f", VOLUME, check=False)
            for daemon, _ in daemons:
                daemon.terminate()
                daemon.wait(timeout=60)
    report.summary()


def parallel(engines: tuple[Engine, Engine, Engine], count: int,
             report: Callable[[str], None]) -> None:
    ref = engines[2]
    par = {}
    for e in engines:
        par[e.label] = parallel_start(e, count)
        e.remove_ours()
    report(f"{count} containers started in parallel (docker run -d): " + ", ".join(
        f"{e.label} {par[e.label]:.2f}s ({par[e.label] / par[ref.label]:.2f}x docker)"
        for e in engines))


def fleets(engines: tuple[Engine, Engine, Engine], count: int,
           report: Callable[[str], None]) -> None:
    cold, warm, ref = engines
    report(f"idle containers ({GUEST_MIB} MiB guests), {count} running:")
    res = {}
    for e in engines:
        res[e.label] = fleet(e, count, report)
        e.remove_ours()
    for e in (cold, warm):
        report(f"  ratios {e.label}/docker: PSS at {count} "
               f"{res[e.label]['pssN'] / res[ref.label]['pssN']:.1f}, docker ps "
               f"{res[e.label]['ps'] / res[ref.label]['ps']:.2f}")


if __name__ == "__main__":
    main()
