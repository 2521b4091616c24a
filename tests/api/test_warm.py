"""Warm start (VM templates) through the real ``docker`` CLI: which path a container
took (inspect ``VM.Path``), what clones of one template must not share, the
template pool in ``docker info``, and the cold fallbacks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from apihelpers import Daemon, docker, fetch, free_port, remove_all_containers, run_warm, vm_record
from backends import WARM

pytestmark = pytest.mark.vm
warm_only = pytest.mark.skipif(not WARM, reason="the suite's daemons start containers cold")

# What a clone shows of itself: 16 random bytes, the boot ID, the hostname, the
# clock, and the MAC addresses of its NICs (loopback's left out).
PROBE = ("head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
         "cat /proc/sys/kernel/random/boot_id; hostname; date +%s; "
         "for n in /sys/class/net/*; do [ ${n##*/} = lo ] || cat $n/address; done")
TEMPLATE_MAC_PREFIX = "02:76:6d:63:"  # vmcontainer.engine.templates.template_mac


@warm_only
def test_clones_share_no_seed_boot_id_hostname_or_mac(daemon: Daemon) -> None:
    """On the default (user-mode) network: each clone's NIC has its own MAC, not
    the template's nor the other clone's (that it is inspect's: below)."""
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
    assert len(macs1) == len(macs2) == 1 and macs1 != macs2
    assert not any(m.startswith(TEMPLATE_MAC_PREFIX) for m in macs1 + macs2)
    for clock in (clock1, clock2):  # set from the host's, not the template's
        assert abs(int(clock) - time.time()) < 30
    for name in (name1, name2):
        docker(daemon, "rm", name)


@warm_only
def test_published_port_reaches_a_warm_clone(daemon: Daemon) -> None:
    """-p on a clone: its own user netdev forwards the host port to the guest, whose
    NIC (found by the template's MAC, given its own) answers."""
    port = free_port()
    name, _ = run_warm(daemon, "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
                       "mkdir /www && echo hi-$HOSTNAME > /www/index.html && "
                       "exec httpd -f -p 80 -h /www")
    try:
        hostname = docker(daemon, "inspect", "-f", "{{.Config.Hostname}}", name).stdout.strip()
        assert fetch(f"http://127.0.0.1:{port}/") == f"hi-{hostname}\n".encode()
        out = docker(daemon, "exec", name, "sh", "-c",
                     "ip -4 addr show eth0; ip route; cat /sys/class/net/eth0/address")
        assert "inet 10.0.2.15/24" in out.stdout and "default via 10.0.2.2" in out.stdout
        mac = docker(daemon, "inspect", "-f", "{{.NetworkSettings.MacAddress}}", name).stdout
        assert out.stdout.endswith(mac) and len(mac) == 18
    finally:
        assert docker(daemon, "rm", "-f", name).returncode == 0


@warm_only
def test_clone_without_a_nic_has_only_loopback(daemon: Daemon) -> None:
    """--network none has a template of its own, without a NIC slot."""
    name, out = run_warm(daemon, "--network", "none", "busybox", "ls", "/sys/class/net")
    assert out == "lo\n"
    with_nic, _ = run_warm(daemon, "busybox", "true")
    assert vm_record(daemon, name)["Template"] != vm_record(daemon, with_nic)["Template"]
    for n in (name, with_nic):
        docker(daemon, "rm", n)


@warm_only
def test_info_shows_the_template_pool(daemon: Daemon) -> None:
    name, _ = run_warm(daemon, "busybox", "true")
    key = vm_record(daemon, name)["Template"]
    info = docker(daemon, "info").stdout
    assert "Warm start templates: " in info
    line = next(ln for ln in info.splitlines() if f"Template {key[:12]}: " in ln)
    assert ", microvm, 1 NIC, built in " in line
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
    warm, _ = run_warm(daemon, "busybox", "true")  # a template for this size exists
    name = "c" + uuid.uuid4().hex[:10]
    r = docker(daemon, "run", "--name", name, "-v", "/data", "busybox", "ls", "-d", "/data")
    assert (r.returncode, r.stdout) == (0, "/data\n"), r.stderr
    assert vm_record(daemon, name)["Path"] == "cold"
    docker(daemon, "rm", "-v", name, warm)


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
