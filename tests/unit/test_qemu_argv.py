from __future__ import annotations

from pathlib import Path

import pytest

from vmcontainer.errors import InvalidParameter
from vmcontainer.vm.nic import HostForward, NicSpec
from vmcontainer.vm.qemuargs import qemu_argv
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec


def spec(**kw: object) -> MachineSpec:
    base: dict[str, object] = dict(
        name="vmc-x", kernel=Path("/k"), initramfs=Path("/i"), cmdline="quiet",
        memory_mib=256, vcpus=2, run_dir=Path("/run/x"),
        disks=(DiskSpec(Path("/d/rootfs.qcow2"), "rootfs"),
               DiskSpec(Path("/d/config.iso"), "config", format="raw", readonly=True)),
        channels=(ChannelSpec("org.vmcontainer.agent.0", "agent.sock"),),
    )
    base.update(kw)
    return MachineSpec(**base)  # type: ignore[arg-type]


def test_microvm_tcg_command_line() -> None:
    argv = qemu_argv(spec(), "qemu", "tcg", 2596130, lapic_timer=True)
    joined = " ".join(argv)
    assert "-machine microvm,x-option-roms=off,acpi=off,pit=off,pic=off,isa-serial=on,rtc=on" \
        in joined
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert argv[argv.index("-append") + 1] == \
        "quiet tsc_early_khz=2596130 lapic_timer_khz=1000000"
    assert "virtio-serial-device,id=vser0,max_ports=2" in argv
    assert "virtio-blk-device,drive=disk0,serial=rootfs" in argv
    assert "driver=raw,node-name=disk1,file=file1,read-only=on" in argv
    assert "virtserialport,bus=vser0.0,chardev=ch0,name=org.vmcontainer.agent.0" in argv
    assert "-nodefaults" in argv and "-no-user-config" in argv and "-no-reboot" in argv
    assert argv[argv.index("-m") + 1] == "256" and argv[argv.index("-smp") + 1] == "2"


def test_tcg_kernel_without_lapic_timer_param_keeps_pit_and_pic() -> None:
    """A kernel that cannot be told its LAPIC timer clock needs the PIT to
    calibrate it under TCG (else `sleep` hangs)."""
    argv = qemu_argv(spec(), "qemu", "tcg", 2596130, lapic_timer=False)
    assert argv[argv.index("-machine") + 1].startswith(
        "microvm,x-option-roms=off,acpi=off,pit=on,pic=on,")
    assert argv[argv.index("-append") + 1] == "quiet tsc_early_khz=2596130"


def test_kvm_microvm_has_no_pit_and_no_timer_hints() -> None:
    argv = qemu_argv(spec(extra_cmdline=("x=1",)), "qemu", "kvm", 2596130, lapic_timer=False)
    assert ",pit=off,pic=off," in argv[argv.index("-machine") + 1]
    assert argv[argv.index("-append") + 1] == "quiet x=1"


def test_kvm_on_q35_uses_pci_devices_and_no_tsc_hint() -> None:
    argv = qemu_argv(spec(machine_type="q35"), "qemu", "kvm", 2596130, lapic_timer=True)
    assert argv[argv.index("-machine") + 1] == "q35"
    assert argv[argv.index("-cpu") + 1] == "host"
    assert "virtio-blk-pci,drive=disk0,serial=rootfs" in argv
    assert "virtio-serial-pci,id=vser0,max_ports=2" in argv
    assert "tsc_early_khz" not in " ".join(argv)
    assert "lapic_timer_khz" not in " ".join(argv)


@pytest.mark.parametrize("bad", [
    dict(memory_mib=32), dict(vcpus=0), dict(machine_type="isapc"),
    dict(disks=(DiskSpec(Path("/a"), "x"), DiskSpec(Path("/b"), "x"))),
])
def test_invalid_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        spec(**bad)


def test_disk_and_channel_fields_validate() -> None:
    with pytest.raises(InvalidParameter):
        DiskSpec(Path("/a"), "bad serial!")
    with pytest.raises(InvalidParameter):
        DiskSpec(Path("/a"), "x", format="vmdk")
    with pytest.raises(InvalidParameter):
        ChannelSpec("n", "../agent.sock")


def test_9p_shares_use_passthrough_and_honour_readonly() -> None:
    from vmcontainer.vm.spec import ShareSpec
    argv = qemu_argv(spec(shares=(ShareSpec(Path("/h/a,b"), "bind0"),
                                  ShareSpec(Path("/h/ro"), "bind1", readonly=True))),
                     "qemu", "tcg", None)
    assert "local,id=fs0,path=/h/a,,b,security_model=passthrough" in argv
    assert "local,id=fs1,path=/h/ro,security_model=passthrough,readonly=on" in argv
    assert "virtio-9p-device,fsdev=fs1,mount_tag=bind1" in argv
    with pytest.raises(InvalidParameter):
        ShareSpec(Path("rel"), "bind0")
    with pytest.raises(InvalidParameter):
        spec(shares=(ShareSpec(Path("/a"), "t"), ShareSpec(Path("/b"), "t")))


def test_user_nic_renders_netdev_with_host_forwards() -> None:
    nic = NicSpec(id="net0", mac="02:42:0a:0b:0c:0d", forwards=(
        HostForward("tcp", "127.0.0.1", 18080, 80), HostForward("udp", "0.0.0.0", 5353, 53)))
    argv = qemu_argv(spec(nics=(nic,)), "qemu", "tcg", None)
    netdev = argv[argv.index("-netdev") + 1]
    assert netdev == ("user,id=net0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,"
                      "dhcpstart=10.0.2.15,ipv6=off,"
                      "hostfwd=tcp:127.0.0.1:18080-10.0.2.15:80,"
                      "hostfwd=udp:0.0.0.0:5353-10.0.2.15:53")
    assert "virtio-net-device,netdev=net0,mac=02:42:0a:0b:0c:0d,id=devnet0" in argv


def test_tap_nic_on_q35_is_pci() -> None:
    nic = NicSpec(id="net1", mac="02:42:ac:11:00:02", netdev="tap", tap="vmc-tap1")
    argv = qemu_argv(spec(machine_type="q35", nics=(nic,)), "qemu", "kvm", None)
    assert "tap,id=net1,ifname=vmc-tap1,script=no,downscript=no,vhost=off" in argv
    assert "virtio-net-pci,netdev=net1,mac=02:42:ac:11:00:02,id=devnet1" in argv


def test_hotplug_slots_are_pcie_root_ports_with_native_hotplug() -> None:
    nic = NicSpec(id="net0", mac="02:42:ac:11:00:02", netdev="tap", tap="vmt1", bus="hp0")
    argv = qemu_argv(spec(machine_type="q35", hotplug_slots=2, nics=(nic,)), "qemu", "tcg",
                     None)
    assert "pcie-root-port,id=hp0,bus=pcie.0,chassis=1,slot=1" in argv
    assert "pcie-root-port,id=hp1,bus=pcie.0,chassis=2,slot=2" in argv
    assert "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off" in argv
    assert "virtio-net-pci,netdev=net0,mac=02:42:ac:11:00:02,id=devnet0,bus=hp0" in argv
    with pytest.raises(InvalidParameter):
        spec(hotplug_slots=2)  # microvm has no hot-plug


@pytest.mark.parametrize("bad", [
    dict(id="net0", mac="02:42:0A:0b:0c:0d"),  # upper case
    dict(id="net0", mac="02:42:0a:0b:0c"),
    dict(id="Net,0", mac="02:42:0a:0b:0c:0d"),
    dict(id="net0", mac="02:42:0a:0b:0c:0d", netdev="tap", tap="a,b"),
    dict(id="net0", mac="02:42:0a:0b:0c:0d", netdev="tap", tap="tap0",
         forwards=(HostForward("tcp", "127.0.0.1", 1, 1),)),
    dict(id="net0", mac="02:42:0a:0b:0c:0d", netdev="vde"),
    dict(id="net0", mac="02:42:0a:0b:0c:0d", guest_ip="10.0.3.15"),
])
def test_invalid_nics_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        NicSpec(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [
    ("sctp", "127.0.0.1", 1, 1), ("tcp", "::1", 1, 1), ("tcp", "127.0.0.1,x", 1, 1),
    ("tcp", "127.0.0.1", 0, 1), ("tcp", "127.0.0.1", 1, 65536),
])
def test_invalid_host_forwards_are_refused(bad: tuple[str, str, int, int]) -> None:
    with pytest.raises(InvalidParameter):
        HostForward(*bad)


def test_nic_ids_are_unique() -> None:
    nic = NicSpec(id="net0", mac="02:42:0a:0b:0c:0d")
    with pytest.raises(InvalidParameter):
        spec(nics=(nic, nic))


def test_template_maps_its_ram_file_shared_and_boots_the_kernel() -> None:
    argv = qemu_argv(spec(memory_file=Path("/dev/shm/t,1.ram"), memory_shared=True,
                          extra_cmdline=("vmcontainer.template=1",)), "qemu", "tcg", None, True)
    assert argv[argv.index("-object") + 1] == \
        "memory-backend-file,id=ram0,size=256M,mem-path=/dev/shm/t,,1.ram,share=on"
    assert argv[argv.index("-machine") + 1].endswith(",rtc=on,memory-backend=ram0")
    assert "-kernel" in argv and "-incoming" not in argv
    assert argv[argv.index("-append") + 1].endswith("vmcontainer.template=1 "
                                                    "lapic_timer_khz=1000000")


def test_clone_maps_the_ram_file_private_and_waits_for_incoming_state() -> None:
    """The same machine and devices as its template, no kernel: its RAM pages are
    the template's, copy-on-write; QemuMachine.incoming loads the state."""
    template = qemu_argv(spec(memory_file=Path("/r"), memory_shared=True), "qemu", "tcg", 1, True)
    clone = qemu_argv(spec(memory_file=Path("/r"), incoming=Path("/s")), "qemu", "tcg", 1, True)
    assert "mem-path=/r,share=off" in clone[clone.index("-object") + 1]
    assert clone[clone.index("-incoming") + 1] == "defer"
    for flag in ("-kernel", "-initrd", "-append"):
        assert flag not in clone
    assert clone[clone.index("-machine") + 1] == template[template.index("-machine") + 1]
    devices = [a for a in clone if a.startswith("virtio-")]
    assert devices == [a for a in template if a.startswith("virtio-")]
