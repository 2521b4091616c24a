"""Warm start (VM templates) through the real ``docker`` CLI: which path a container
took (inspect ``VM.Path``), what clones of one template must not share, the
template pool in ``docker info``, and the cold fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from apihelpers import Daemon, remove_all_containers
from backends import BACKEND

pytestmark = pytest.mark.vm
# The suite's daemons clone templates on the qemu backend unless the suite runs
# cold (VMCONTAINER_WARM_START=0; libvirt always boots cold).
warm_only = pytest.mark.skipif(
    BACKEND != "qemu" or os.environ.get("VMCONTAINER_WARM_START") == "0",
    reason="the suite's daemons start containers cold")

# What a clone shows of itself: 16 random bytes, the boot ID, the hostname, the
# clock, and the MAC addresses of its NICs (none but loopback's on the warm path).
PROBE = ("head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
         "cat /proc/sys/kernel/random/boot_id; hostname; date +%s; "
         "for n in /sys/class/net/*; do [ ${n##*/} = lo ] || cat $n/address; done")


def docker(d: Daemon, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=timeout)


def vm_record(d: Daemon, name: str) -> dict[str, Any]:
    r = docker(d, "inspect", name)
    assert r.returncode == 0, r.stderr
    vm: dict[str, Any] = json.loads(r.stdout)[0]["VM"]
    return vm


def run_warm(d: Daemon, *args: str, deadline_s: float = 90) -> tuple[str, str]:
    """``docker run --name N --network none args`` until it took the warm path (the
    first start of a machine size builds its template in the background); (name,
    stdout). ``--network none``: templates have no NIC slot yet, so containers with
    a NIC (the default user network) start cold."""
    end = time.monotonic() + deadline_s
    while True:
        name = "w" + uuid.uuid4().hex[:10]
        r = docker(d, "run", "--name", name, "--network", "none", *args)
        assert r.returncode == 0, r.stderr
        if vm_record(d, name)["Path"] == "warm":
            return name, r.stdout
        docker(d, "rm", name)
        assert time.monotonic() < end, "no template was built"
        time.sleep(0.5)


@warm_only
def test_clones_share_no_seed_boot_id_hostname_or_mac(daemon: Daemon) -> None:
    name1, out1 = run_warm(daemon, "busybox", "sh", "-c", PROBE)
    name2, out2 = run_warm(daemon, "busybox", "sh", "-c", PROBE)
    vm1, vm2 = vm_record(daemon, name1), vm_record(daemon, name2)
    assert vm1["Template"] == vm2["Template"]
    assert 0 < vm1["ReadyMs"] <= vm1["StartedMs"]
    lines1, lines2 = out1.splitlines(), out2.splitlines()
    rand1, boot1, host1, clock1, *macs1 = lines1
    rand2, boot2, host2, clock2, *macs2 = lines2
    assert len(rand1) == 32 and rand1 != rand2
    assert len(boot1) == 36 and boot1 != boot2
    assert host1 != host2
    assert not set(macs1) & set(macs2)
    for clock in (clock1, clock2):  # set from the host's, not the template's
        assert abs(int(clock) - time.time()) < 30
    for name in (name1, name2):
        docker(daemon, "rm", name)


@warm_only
def test_info_shows_the_template_pool(daemon: Daemon) -> None:
    name, _ = run_warm(daemon, "busybox", "true")
    key = vm_record(daemon, name)["Template"]
    info = docker(daemon, "info").stdout
    assert "Warm start templates: " in info
    assert f"Template {key[:12]}: " in info
    docker(daemon, "rm", name)


@warm_only
def test_clone_reads_its_own_rootfs_and_keeps_writes(daemon: Daemon) -> None:
    """The template's kernel read other disks in these slots: a clone must see its
    own rootfs (and a restart, cold or warm, what it wrote)."""
    name, out = run_warm(daemon, "busybox", "sh", "-c",
                         "echo kept > /marker; ls /bin/busybox; cat /marker")
    assert out == "/bin/busybox\nkept\n"
    assert docker(daemon, "start", name).returncode == 0
    assert docker(daemon, "wait", name).stdout == "0\n"
    assert docker(daemon, "logs", name).stdout == "/bin/busybox\nkept\n" * 2
    docker(daemon, "rm", name)


@warm_only
def test_container_with_a_volume_starts_cold(daemon: Daemon) -> None:
    run_warm(daemon, "busybox", "true")  # a template for this size exists
    name = "c" + uuid.uuid4().hex[:10]
    r = docker(daemon, "run", "--name", name, "-v", "/data", "busybox", "ls", "-d", "/data")
    assert (r.returncode, r.stdout) == (0, "/data\n"), r.stderr
    assert vm_record(daemon, name)["Path"] == "cold"
    docker(daemon, "rm", "-v", name)


def test_warm_start_off(tmp_path: Path, daemon: Daemon) -> None:
    d = Daemon(tmp_path / "root", tmp_path / "d.sock")
    d.env["VMCONTAINER_WARM_START"] = "0"
    d.start()
    try:
        archive = tmp_path / "busybox.tar"
        saved = docker(daemon, "save", "-o", str(archive), "busybox")
        assert saved.returncode == 0, saved.stderr
        assert docker(d, "load", "-i", str(archive)).returncode == 0
        for i in range(2):
            r = docker(d, "run", "--name", f"c{i}", "busybox", "true")
            assert r.returncode == 0, r.stderr
            assert vm_record(d, f"c{i}")["Path"] == "cold"
        assert "Warm start: off" in docker(d, "info").stdout
        remove_all_containers(d)
    finally:
        assert d.stop() == 0, d.log_text()
