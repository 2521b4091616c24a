"""The QEMU command line of a MachineSpec for the ``qemu`` backend: a pure function,
pinned by tests/unit/test_qemu_argv.py.

Machine: ``microvm`` (virtio-mmio, PVH boot of an uncompressed vmlinux, no firmware,
no PCI) by default; ``q35`` (virtio-pci) where microvm lacks a capability. Flags and
their reasons: DESIGN.md "Hypervisor" and issue "Fast start".
"""

from __future__ import annotations

from vmcontainer.vm.guestkernel import boot_cmdline
from vmcontainer.vm.spec import MachineSpec

QEMU_BINARY = "qemu-system-x86_64"
# No firmware option ROMs, ACPI, PIT or PIC: less to emulate and to probe. The RTC
# stays (rtc=off costs ~1.1 s of boot, measured). Under TCG (no TSC-deadline timer)
# a guest without a PIT can only run its LAPIC timer when given the timer's clock
# (guestkernel.boot_cmdline, lapic_timer_khz); a kernel that does not accept it keeps
# the PIT and PIC, or no timer ever fires and `sleep` hangs.
_MICROVM = "x-option-roms=off,acpi=off,pit={legacy},pic={legacy},isa-serial={serial},rtc=on"


def microvm_options(accel: str, lapic_timer: bool, isa_serial: bool = True) -> str:
    """microvm's ``-machine`` options (after ``microvm,``); ``isa_serial`` off where
    the console is a separate ``isa-serial`` device (libvirt's)."""
    return _MICROVM.format(legacy="on" if accel == "tcg" and not lapic_timer else "off",
                           serial="on" if isa_serial else "off")


def _device(kind: str, machine_type: str) -> str:
    """virtio device model for the machine's transport: ``virtio-blk-device`` on
    microvm (mmio), ``virtio-blk-pci`` on q35."""
    return f"virtio-{kind}-device" if machine_type == "microvm" else f"virtio-{kind}-pci"


def machine_arg(spec: MachineSpec, accel: str, lapic_timer: bool) -> str:
    """QEMU's ``-machine`` value; ``lapic_timer``: the kernel accepts
    ``lapic_timer_khz`` (guestkernel.kernel_accepts)."""
    ram = ",memory-backend=ram0" if spec.memory_file else ""
    if spec.machine_type != "microvm":
        return spec.machine_type + ram
    return "microvm," + microvm_options(accel, lapic_timer) + ram


def qemu_argv(spec: MachineSpec, binary: str, accel: str, tsc_khz: int | None,
              lapic_timer: bool = False) -> list[str]:
    """The full QEMU command line for ``spec`` (``accel``: ``kvm`` or ``tcg``;
    ``tsc_khz`` and ``lapic_timer`` as for ``guestkernel.boot_cmdline``).

    Pure function of its inputs; the unit tests pin its output.
    """
    mt = spec.machine_type
    argv = [
        binary, "-name", spec.name,
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-machine", machine_arg(spec, accel, lapic_timer),
        "-accel", accel,
        "-cpu", "host" if accel == "kvm" else "max",
        "-m", str(spec.memory_mib),
        "-smp", str(spec.vcpus),
        *_boot_args(spec, accel, tsc_khz, lapic_timer),
        "-chardev", "socket,id=qmp,path=qmp.sock,server=on,wait=off",
        "-mon", "chardev=qmp,mode=control",
        "-chardev", "file,id=console,path=console.log",
        "-serial", "chardev:console",
        "-device", _device("rng", mt),
    ]
    if spec.channels:
        # Port 0 is virtconsole's; the guest driver sets up two virtqueues per port
        # up to max_ports (default 31) at probe time: only as many as used.
        argv += ["-device", f"{_device('serial', mt)},id=vser0,max_ports={len(spec.channels) + 1}"]
    for i, ch in enumerate(spec.channels):
        argv += [
            "-chardev", f"socket,id=ch{i},path={ch.socket},server=on,wait=off",
            "-device", f"virtserialport,bus=vser0.0,chardev=ch{i},name={ch.name}",
        ]
    for i, disk in enumerate(spec.disks):
        ro = "on" if disk.readonly else "off"
        argv += [
            "-blockdev",
            f"driver=file,node-name=file{i},filename={disk.path},read-only={ro},"
            "cache.direct=off,aio=threads",
            "-blockdev", f"driver={disk.format},node-name=disk{i},file=file{i},read-only={ro}",
            "-device", f"{_device('blk', mt)},drive=disk{i},serial={disk.serial}",
        ]
    for i, share in enumerate(spec.shares):
        # security_model=passthrough: files the guest creates get the guest's
        # uid, gid and mode on the host, as a bind mount under Docker does (QEMU
        # runs as root here; "mapped-xattr" would hide ownership in xattrs and
        # show the host's files as root-owned 0600 to the guest).
        ro = ",readonly=on" if share.readonly else ""
        path = str(share.path).replace(",", ",,")  # QEMU's option escape
        argv += [
            "-fsdev", f"local,id=fs{i},path={path},security_model=passthrough{ro}",
            "-device", f"{_device('9p', mt)},fsdev=fs{i},mount_tag={share.tag}",
        ]
    if spec.hotplug_slots:
        # Native PCIe hot-plug (the guest's pciehp): QEMU would otherwise signal
        # hot-plug through ACPI, which the guest kernel does not have.
        argv += ["-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
    for i in range(spec.hotplug_slots):
        argv += ["-device", f"pcie-root-port,id=hp{i},bus=pcie.0,chassis={i + 1},slot={i + 1}"]
    for nic in spec.nics:
        argv += nic.qemu_args(_device("net", mt))
    return argv


def _boot_args(spec: MachineSpec, accel: str, tsc_khz: int | None,
               lapic_timer: bool) -> list[str]:
    """Guest RAM and what the VM starts from: the kernel, or (``spec.incoming``) a
    template's saved state. Template and clones skip RAM in the migration stream
    (``x-ignore-shared``): it is the memory file itself."""
    argv: list[str] = []
    if spec.memory_file:
        share = "on" if spec.memory_shared else "off"
        path = str(spec.memory_file).replace(",", ",,")
        argv += ["-object", f"memory-backend-file,id=ram0,size={spec.memory_mib}M,"
                 f"mem-path={path},share={share}"]
    if spec.incoming:  # QemuMachine.incoming sets x-ignore-shared, then starts it
        return [*argv, "-incoming", "defer"]
    return [*argv, "-kernel", str(spec.kernel), "-initrd", str(spec.initramfs),
            "-append", boot_cmdline(spec, accel, tsc_khz, lapic_timer)]
