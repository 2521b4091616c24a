"""Files for a domain on a remote host, placed through libvirt's storage API (volume
create + upload into a pool), never by assuming a shared filesystem.

Volumes in the pool, by name:
  ``vmc-boot-<dir>-<file>``      the guest kernel and initramfs (boot-asset dirs are
                                 content-hashed, so one volume per build)
  ``vmc-base-<file>``            an image's read-only base disk (the overlay's backing)
  ``vmc-<owner>-<serial>``       the container's disks: the qcow2 overlay (uploaded once,
                                 then kept there: writes live on the remote host until
                                 the container is removed) and the config disk
                                 (uploaded at every start: it changes)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any

from vmcontainer.errors import System, Unavailable
from vmcontainer.vm.libvirtconn import Connection, _libvirt
from vmcontainer.vm.libvirtxml import HostPaths
from vmcontainer.vm.spec import MachineSpec

_CHUNK = 1 << 20


def _backing_file(path: Path) -> Path | None:
    """The backing file named in a qcow2 header (``qemu-img info``), or None."""
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise System(f"qemu-img info {path}: {out.stderr.strip()}")
    backing = json.loads(out.stdout).get("full-backing-filename")
    return Path(backing) if backing else None


class VolumePlacer:
    """Uploads a spec's files into ``pool`` on the connection's host."""

    def __init__(self, conn: Connection, pool: str) -> None:
        self._conn = conn
        self._pool_name = pool
        self._locks: dict[str, asyncio.Lock] = {}

    def _pool(self) -> Any:
        lv = _libvirt()
        try:
            pool = self._conn.conn.storagePoolLookupByName(self._pool_name)
            if not pool.isActive():
                pool.create(0)
            return pool
        except lv.libvirtError as err:
            raise Unavailable(f"libvirt storage pool {self._pool_name!r} at "
                              f"{self._conn.uri}: {err.get_error_message()}") from err

    def _upload(self, pool: Any, name: str, src: Path, replace: bool) -> PurePosixPath:
        """Volume ``name`` holding the bytes of ``src``; an existing one is kept unless
        ``replace``. Returns its path on the remote host. Blocking."""
        lv = _libvirt()
        try:
            vol = pool.storageVolLookupByName(name)
            if not replace:
                return PurePosixPath(vol.path())
            vol.delete(0)
        except lv.libvirtError:
            pass
        size = src.stat().st_size
        spec = ET.Element("volume")
        ET.SubElement(spec, "name").text = name
        ET.SubElement(spec, "capacity", unit="bytes").text = str(size)
        ET.SubElement(spec, "allocation", unit="bytes").text = "0"  # sparse, no prealloc
        target = ET.SubElement(spec, "target")
        ET.SubElement(target, "format", type="raw")
        try:
            vol = pool.createXML(ET.tostring(spec, encoding="unicode"), 0)
            stream = self._conn.conn.newStream(0)
            vol.upload(stream, 0, size, lv.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
            fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
            try:
                stream.sparseSendAll(_read, _hole, _skip, fd)
            finally:
                os.close(fd)
            stream.finish()
            return PurePosixPath(vol.path())
        except (lv.libvirtError, OSError) as err:
            raise System(f"uploading {src} to libvirt volume {name}: {err}") from err

    async def _volume(self, pool: Any, name: str, src: Path, replace: bool = False
                      ) -> PurePosixPath:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self._upload, pool, name, src, replace)

    async def place(self, spec: MachineSpec) -> HostPaths:
        """Upload what ``spec`` boots from; returns its paths on the remote host."""
        pool = await asyncio.to_thread(self._pool)
        kernel = await self._volume(pool, _boot_name(spec.kernel), spec.kernel)
        initramfs = await self._volume(pool, _boot_name(spec.initramfs), spec.initramfs)
        disks, backing = [], []
        for disk in spec.disks:
            base = (await asyncio.to_thread(_backing_file, disk.path)
                    if disk.format == "qcow2" else None)
            backing.append(await self._volume(pool, f"vmc-base-{base.name}", base)
                           if base else None)
            # The overlay keeps the container's writes: uploaded once. Read-only disks
            # (the config disk) are rewritten at every start.
            disks.append(await self._volume(pool, f"vmc-{spec.owner}-{disk.serial}",
                                            disk.path, replace=disk.readonly))
        return HostPaths(kernel, initramfs, tuple(disks), tuple(backing), None)

    async def discard(self, owner: str) -> None:
        """Delete the container volumes of ``owner`` (base and boot volumes stay)."""
        def delete() -> None:
            pool = self._pool()
            for vol in pool.listAllVolumes(0):
                if vol.name().startswith(f"vmc-{owner}-"):
                    vol.delete(0)
        try:
            await asyncio.to_thread(delete)
        except _libvirt().libvirtError as err:
            raise System(f"deleting libvirt volumes of {owner}: "
                         f"{err.get_error_message()}") from err


# Sparse upload (base disks are 8 GiB files holding a few MiB): data and holes as
# SEEK_DATA/SEEK_HOLE find them, after libvirt-python's examples/sparsestream.py.

def _read(_stream: Any, nbytes: int, fd: int) -> bytes:
    return os.read(fd, min(nbytes, _CHUNK))


def _hole(_stream: Any, fd: int) -> list[Any]:
    """[in data?, length of this data or hole section] at the current offset."""
    cur = os.lseek(fd, 0, os.SEEK_CUR)
    end = os.fstat(fd).st_size
    try:
        data = os.lseek(fd, cur, os.SEEK_DATA)
    except OSError:  # ENXIO: a hole up to the end
        data = end
    if data > cur or data >= end:
        os.lseek(fd, cur, os.SEEK_SET)
        return [False, data - cur]
    hole = os.lseek(fd, cur, os.SEEK_HOLE)
    os.lseek(fd, cur, os.SEEK_SET)
    return [True, hole - cur]


def _skip(_stream: Any, length: int, fd: int) -> int:
    os.lseek(fd, length, os.SEEK_CUR)
    return 0


def _boot_name(path: Path) -> str:
    name = f"vmc-boot-{path.parent.name}-{path.name}"
    return name if os.sep not in name else name.replace(os.sep, "-")
