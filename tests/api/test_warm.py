"""Warm start (VM templates) through the real ``docker`` CLI: which path a container
took (inspect ``VM.Path``), what clones of one template must not share, the
template pool in ``docker info``, and the cold fallbacks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from apihelpers import Daemon, docker, fetch, free_port, remove_all_containers, run_warm, vm_record
from backends import WARM
from privlibvirtd import temp_netns

from vmcontainer.engine.templatelayout import VOLUME_CAPACITY

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


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


@warm_only
def test_named_volume_is_kept_across_warm_clones(daemon: Daemon, name: str) -> None:
    """A volume disk in a clone: the template's guest probed a placeholder in its
    slot, a clone mounts its own volume (found by serial), and what one clone
    wrote the next reads."""
    vol = name + "v"
    first, out = run_warm(daemon, "-v", f"{vol}:/data", "busybox", "sh", "-c",
                          "hostname > /data/writer; grep ' /data ' /proc/mounts")
    assert " /data ext4 rw," in out, out
    second, out = run_warm(daemon, "--mount", f"type=volume,src={vol},dst=/v,ro", "busybox",
                           "sh", "-c", "cat /v/writer; touch /v/x 2>&1 | "
                           "grep -o 'Read-only file system'")
    hostname = _ok(docker(daemon, "inspect", "-f", "{{.Config.Hostname}}", first))
    assert out == hostname + "Read-only file system\n"
    key = vm_record(daemon, second)["Template"]
    assert vm_record(daemon, first)["Template"] == key
    line = next(ln for ln in _ok(docker(daemon, "info")).splitlines()
                if f"Template {key[:12]}: " in ln)
    assert ", microvm, 1 NIC, 1 volume, built in " in line, line
    _ok(docker(daemon, "rm", first, second))
    _ok(docker(daemon, "volume", "rm", vol))


@warm_only
def test_bind_mounts_and_tmpfs_in_a_warm_clone(daemon: Daemon, tmp_path: Path) -> None:
    """9p shares in a clone (the guest keeps the tags it probed: bind0, bind1),
    read-write and read-only, both ways, next to a tmpfs and an anonymous volume."""
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "in.txt").write_text("from the host\n")
    script = ("cat /ro/in.txt; echo from-$HOSTNAME > /rw/out.txt; "
              "touch /ro/x 2>&1 | grep -o 'Read-only file system'; "
              "grep ' /t ' /proc/mounts | cut -d' ' -f3; echo anon > /anon/f; cat /anon/f")
    name, out = run_warm(daemon, "-v", f"{rw}:/rw", "-v", f"{ro}:/ro:ro", "--tmpfs", "/t",
                         "-v", "/anon", "busybox", "sh", "-c", script)
    hostname = _ok(docker(daemon, "inspect", "-f", "{{.Config.Hostname}}", name)).strip()
    assert out == "from the host\nRead-only file system\ntmpfs\nanon\n", out
    assert (rw / "out.txt").read_text() == f"from-{hostname}\n"
    assert not (ro / "x").exists()
    # a running clone sees the host's changes at once (9p, no cache)
    running, _ = run_warm(daemon, "-d", "-v", f"{rw}:/rw", "-v", f"{ro}:/ro:ro", "--tmpfs",
                          "/t", "-v", "/anon", "busybox", "sleep", "300")
    (rw / "later.txt").write_text("later\n")
    assert _ok(docker(daemon, "exec", running, "cat", "/rw/later.txt", "/ro/in.txt")) == \
        "later\nfrom the host\n"
    assert vm_record(daemon, running)["Template"] == vm_record(daemon, name)["Template"]
    _ok(docker(daemon, "rm", "-f", "-v", name, running))


@warm_only
def test_clones_see_only_their_own_volumes(daemon: Daemon, name: str) -> None:
    """Two clones of one template (two volume slots each), running at once, each
    with volumes of its own: each sees its own disks in its slots."""
    vols = {c: (f"{name}{c}1", f"{name}{c}2") for c in "ab"}
    for v1, v2 in vols.values():  # fill each volume with a file of its own name
        _ok(docker(daemon, "run", "--rm", "-v", f"{v1}:/one", "-v", f"{v2}:/two", "busybox",
                   "sh", "-c", f"touch /one/{v1} /two/{v2}"))
    names = {}
    for c, (v1, v2) in vols.items():
        names[c], _ = run_warm(daemon, "-d", "-v", f"{v1}:/one", "-v", f"{v2}:/two",
                               "busybox", "sleep", "300")
    for c, (v1, v2) in vols.items():
        out = _ok(docker(daemon, "exec", names[c], "sh", "-c", "ls /one /two | grep -v lost"))
        assert out == f"/one:\n{v1}\n\n/two:\n{v2}\n", out
    assert vm_record(daemon, names["a"])["Template"] == vm_record(daemon, names["b"])["Template"]
    _ok(docker(daemon, "rm", "-f", *names.values()))
    _ok(docker(daemon, "volume", "rm", *vols["a"], *vols["b"]))


@warm_only
def test_volume_larger_than_its_slot_starts_cold(daemon: Daemon, name: str) -> None:
    """The guest keeps the capacity the template probed (VOLUME_CAPACITY): a larger
    volume cannot clone, and boots cold (and works) while a template exists."""
    small, big = name + "s", name + "b"
    warm, _ = run_warm(daemon, "-v", f"{small}:/data", "busybox", "true")
    size = f"{2 * VOLUME_CAPACITY >> 30}g"
    _ok(docker(daemon, "volume", "create", "-o", f"size={size}", big))
    r = docker(daemon, "run", "--name", name, "-v", f"{big}:/data", "busybox", "sh", "-c",
               "echo big > /data/f && cat /data/f && df -k /data | tail -1 | awk '{print $2}'")
    lines = _ok(r).split()
    assert lines[0] == "big" and int(lines[1]) > VOLUME_CAPACITY >> 10, r.stdout
    assert vm_record(daemon, name)["Path"] == "cold"
    _ok(docker(daemon, "rm", warm, name))
    _ok(docker(daemon, "volume", "rm", small, big))


@warm_only
def test_volume_and_bind_in_a_q35_clone(tmp_path: Path, busybox_archive: Path) -> None:
    """Bridge mode (as root): q35 templates, virtio-pci disks and shares next to the
    boot NIC's root port and the hot-plug ports; a clone's volume, bind mount and
    NIC are its own. The daemon and its bridge live in a namespace of this test."""
    with temp_netns("vmcw") as ns:
        d = Daemon(tmp_path / "root", tmp_path / "d.sock", prefix=("ip", "netns", "exec", ns),
                   extra=("--network-mode", "bridge"))
        d.start()
        try:
            _ok(docker(d, "load", "-i", str(busybox_archive)))
            (tmp_path / "h").mkdir()
            names = [run_warm(d, "-d", "-v", f"v{i}:/data", "-v", f"{tmp_path / 'h'}:/h",
                              "busybox", "sh", "-c",
                              f"echo {i} > /data/f && echo {i} > /h/f{i} && sleep 600")[0]
                     for i in range(2)]
            assert vm_record(d, names[0])["Template"] == vm_record(d, names[1])["Template"]
            assert vm_record(d, names[0])["MachineType"] == "q35"
            for i, n in enumerate(names):
                ip = _ok(docker(d, "inspect", "-f",
                                "{{.NetworkSettings.Networks.bridge.IPAddress}}", n)).strip()
                out = _ok(docker(d, "exec", n, "sh", "-c", "cat /data/f; ls /h; "
                                 "ip -4 -o addr show eth0"))
                assert out.startswith(f"{i}\nf0\nf1\n") and f"inet {ip}/" in out, out
            info = _ok(docker(d, "info"))
            assert ", q35, 1 NIC, 1 volume, 1 bind mount, built in " in info, info
        finally:
            remove_all_containers(d)
            assert d.stop() == 0, d.log_text()


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
