"""The enum factory of backends: the daemon names one, the engine gets a Backend and
never asks which (DESIGN.md "Backends")."""

from __future__ import annotations

import enum
import os

from vmcontainer.vm.backend import Backend


class BackendKind(enum.Enum):
    QEMU = "qemu"
    LIBVIRT = "libvirt"


async def open_backend(kind: BackendKind, accel: str, libvirt_uri: str = "",
                       libvirt_pool: str = "default") -> Backend:
    """A backend of ``kind``; ``accel`` (``kvm``/``tcg``) is the local host's, used
    on a remote libvirt host only when ``VMCONTAINER_ACCEL`` says so or its libvirt
    offers KVM. Raises Unavailable when libvirt is missing or does not answer."""
    if kind is BackendKind.QEMU:
        from vmcontainer.vm.qemu import QemuBackend

        return QemuBackend(accel, tie_to_parent=False)
    from vmcontainer.vm.libvirt import LibvirtBackend, default_uri
    from vmcontainer.vm.libvirtconn import Connection, is_remote

    conn = await Connection.open(libvirt_uri or default_uri())
    if is_remote(conn.uri):
        accel = os.environ.get("VMCONTAINER_ACCEL") or (
            "kvm" if await conn.offers_kvm() else "tcg")
    return LibvirtBackend(conn, accel, libvirt_pool)
