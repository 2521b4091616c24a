"""Sequential write and read throughput (MB/s) inside the guest on the rootfs
overlay, a named volume (ext4 disk) and a bind mount (virtio-9p), beside the same
``dd`` on the host disk, in one run.

    python bench/volume_throughput.py [-m 64]

Each guest figure comes from one container (``docker run`` through a fresh
``vmcontainer daemon``): ``dd`` writes MiB of zeros with ``conv=fsync``, the
guest's page cache is dropped, ``dd`` reads the file back; times are taken inside
the guest (``/proc/uptime``). The host figures use GNU dd with ``conv=fsync`` and
``iflag=nocache`` (the file's pages dropped before reading) in a directory of the
same disk. Under TCG the guest figures mostly measure the emulated CPU.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.config import Settings

# The daemons here run in the host's network namespace: user-mode networking, so
# that no bridge or nftables table is made there (bench/net_boot.py measures bridge
# mode inside a namespace of its own).
os.environ["VMCONTAINER_NETWORK"] = "user"

GUEST = ("mkdir -p {d}; u() {{ cut -d' ' -f1 /proc/uptime; }}; t0=$(u); "
         "dd if=/dev/zero of={d}/f bs=1M count={n} conv=fsync 2>/dev/null; t1=$(u); sync; "
         "echo 3 > /proc/sys/vm/drop_caches; t2=$(u); dd if={d}/f of=/dev/null bs=1M "
         "2>/dev/null; t3=$(u); rm {d}/f; echo $t0 $t1 $t2 $t3")
"""Times from the guest's /proc/uptime (10 ms steps): busybox ``date`` has no %N."""


def mbps(mib: int, ns: int) -> float:
    return mib * 1.048576 / (ns / 1e9)


def host_figures(directory: Path, mib: int) -> tuple[float, float]:
    f = directory / "f"
    t0 = time.perf_counter_ns()
    subprocess.run(["dd", "if=/dev/zero", f"of={f}", "bs=1M", f"count={mib}", "conv=fsync"],
                   check=True, capture_output=True)
    t1 = time.perf_counter_ns()
    subprocess.run(["dd", f"if={f}", "iflag=nocache", "count=0"], check=True,
                   capture_output=True)
    t2 = time.perf_counter_ns()
    subprocess.run(["dd", f"if={f}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
    t3 = time.perf_counter_ns()
    f.unlink()
    return mbps(mib, t1 - t0), mbps(mib, t3 - t2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--mib", type=int, default=64, help="file size in MiB")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmc-volbench-", dir="/var/tmp") as t:
        tmp = Path(t)
        sock = tmp / "d.sock"
        env = {**os.environ, "VMCONTAINER_ROOT": str(tmp / "root"),
               "VMCONTAINER_BOOT_DIR": str(Settings.from_env().boot_dir),
               "DOCKER_HOST": f"unix://{sock}"}
        with open(tmp / "daemon.log", "wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "vmcontainer", "daemon", "-H",
                                       f"unix://{sock}"], env=env, stderr=log)
        try:
            while not sock.exists():
                if daemon.poll() is not None:
                    raise SystemExit((tmp / "daemon.log").read_text())
                time.sleep(0.05)
            applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True,
                                     text=True, check=True).stdout.split()
            archive = tmp / "bb.tar"
            write_docker_archive(archive, [busybox_rootfs_tar(
                [a for a in applets if a != "busybox"])], ["bench:latest"],
                {"Cmd": ["sh"], "Env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"]})
            subprocess.run(["docker", "load", "-i", str(archive)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            bind = tmp / "bind"
            bind.mkdir()
            rows = []
            for label, flags, d in (
                    ("rootfs overlay (qcow2)", [], "/benchdir"),
                    ("named volume (ext4 disk)", ["-v", "benchvol:/vol"], "/vol"),
                    ("bind mount (virtio-9p)", ["-v", f"{bind}:/bind"], "/bind")):
                out = subprocess.run(
                    ["docker", "run", "--rm", "-m", "1g", *flags, "bench",
                     "sh", "-c", GUEST.format(d=d, n=args.mib)],
                    env=env, check=True, capture_output=True, text=True, timeout=1800).stdout
                t0, t1, t2, t3 = (float(x) for x in out.split())
                rows.append((label, mbps(args.mib, round((t1 - t0) * 1e9)),
                             mbps(args.mib, round((t3 - t2) * 1e9))))
            rows.append(("host disk (same filesystem)", *host_figures(tmp, args.mib)))
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    print(f"sequential {args.mib} MiB, dd bs=1M (MB/s)")
    print(f"{'where':30} {'write':>9} {'read':>9}")
    for label, w, r in rows:
        print(f"{label:30} {w:9.1f} {r:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
