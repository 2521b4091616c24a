"""Daemon settings from flags and a ``daemon.json`` like Docker's.

Keys read: ``hosts``, ``debug``, ``data-root``, ``group``, ``tls``, ``tlsverify``,
``tlscacert``, ``tlscert``, ``tlskey``, ``insecure-registries`` (registries reached
without TLS checks besides loopback ones: ``host[:port]`` or CIDR),
``registry-mirrors`` (``http[s]://host[:port]`` mirrors of Docker Hub),
``registry-certs-dir`` (vmcontainer's own: a directory of ``<host:port>/ca.crt``
looked at before ``/etc/vmcontainer/certs.d`` and ``/etc/docker/certs.d``), ``backend``
(``qemu`` or ``libvirt``), ``libvirt-uri``, ``libvirt-pool``, ``network-mode`` (``user``
or ``bridge``; vmcontainer's own; their defaults come from ``VMCONTAINER_BACKEND``,
``VMCONTAINER_LIBVIRT_URI``, ``VMCONTAINER_LIBVIRT_POOL`` and ``VMCONTAINER_NETWORK``
when set: the daemon a CLI starts inherits them; the network mode's last default is
``bridge`` as root, ``user`` otherwise: ``vmcontainer.config.network_mode``). As in Docker,
a directive given both as a flag and in the file is an error; other Docker keys are
ignored with a warning (they mean nothing here yet), and a missing default file is no error. Unlike
Docker, ``tls`` alone also verifies clients: TCP is served only to clients with a
certificate signed by ``tlscacert``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmcontainer.config import network_mode
from vmcontainer.errors import InvalidParameter
from vmcontainer.image.registry import RegistryPolicy
from vmcontainer.vm.libvirtconn import is_remote

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

KEYS = {"hosts": list, "debug": bool, "data-root": str, "group": str, "tls": bool,
        "tlsverify": bool, "tlscacert": str, "tlscert": str, "tlskey": str,
        "insecure-registries": list, "registry-mirrors": list, "registry-certs-dir": str,
        "backend": str, "libvirt-uri": str, "libvirt-pool": str, "network-mode": str}


@dataclass(frozen=True)
class TlsFiles:
    """``--tlscacert`` (the CA that signs client certificates), ``--tlscert``,
    ``--tlskey`` (the server's)."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """Requires and verifies a client certificate signed by ``ca``."""
        import ssl  # only for tcp://: every CLI command imports this module

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        ctx.load_cert_chain(str(self.cert), str(self.key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


def default_config_file() -> Path:
    if os.geteuid() == 0:
        return Path("/etc/vmcontainer/daemon.json")
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "vmcontainer" / "daemon.json"


def default_host() -> str:
    """``unix:///run/vmcontainer.sock`` as root, else in ``$XDG_RUNTIME_DIR``."""
    if os.geteuid() == 0:
        return "unix:///run/vmcontainer.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        raise InvalidParameter("XDG_RUNTIME_DIR is not set: say where to listen with "
                               "-H unix:///path/to/vmcontainer.sock")
    return f"unix://{runtime}/vmcontainer.sock"


@dataclass(frozen=True)
class DaemonConfig:
    hosts: tuple[str, ...]
    debug: bool = False
    data_root: Path | None = None
    group: str = "vmcontainer"
    tls: TlsFiles | None = None
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    registry_certs_dir: str = ""
    backend: str = "qemu"
    libvirt_uri: str = ""
    libvirt_pool: str = "default"
    network_mode: str = "user"


def read_file(path: Path, explicit: bool) -> dict[str, Any]:
    """The file's known directives (type-checked); {} for a missing default file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        if explicit:
            raise InvalidParameter(f"unable to configure the daemon with file {path}: "
                                   "no such file") from None
        return {}
    except OSError as err:
        raise InvalidParameter(f"unable to configure the daemon with file {path}: "
                               f"{err.strerror}") from err
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as err:
        raise InvalidParameter(f"unable to configure the daemon with file {path}: "
                               f"{err}") from err
    if not isinstance(doc, dict):
        raise InvalidParameter(f"unable to configure the daemon with file {path}: "
                               "expected a JSON object")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        kind = KEYS.get(key)
        if kind is None:
            log.warning("daemon.json: ignoring %r, which vmcontainer does not support", key)
            continue
        if not isinstance(value, kind) or (isinstance(value, list) and not all(
                isinstance(v, str) for v in value)):
            raise InvalidParameter(f"unable to configure the daemon with file {path}: "
                                   f"{key!r} must be a {kind.__name__}")
        out[key] = value
    return out


def merge(flags: dict[str, Any], path: Path, explicit: bool) -> DaemonConfig:
    """``flags`` holds the flags given (absent ones left out), keyed as the file."""
    file = read_file(path, explicit)
    both = sorted(k for k in flags if k in file and k != "debug")
    if both:
        detail = ", ".join(f"{k}: (from flag: {flags[k]}, from file: {file[k]})" for k in both)
        raise InvalidParameter(f"unable to configure the daemon with file {path}: the "
                               "following directives are specified both as a flag and in "
                               f"the configuration file: {detail}")
    s = {**file, **flags}
    if s.get("debug") is None:
        s["debug"] = file.get("debug", False)
    tls = None
    if s.get("tlsverify") or s.get("tls"):
        missing = [k for k in ("tlscacert", "tlscert", "tlskey") if not s.get(k)]
        if missing:
            raise InvalidParameter("TLS needs " + ", ".join(f"--{k}" for k in missing))
        tls = TlsFiles(Path(s["tlscacert"]), Path(s["tlscert"]), Path(s["tlskey"]))
    hosts = tuple(s.get("hosts") or ()) or (default_host(),)
    for host in hosts:
        scheme = host.partition("://")[0]
        if scheme not in ("unix", "tcp") or "://" not in host:
            raise InvalidParameter(f"invalid daemon host {host!r}: use unix:///path or "
                                   "tcp://host:port")
        if scheme == "tcp" and tls is None:
            raise InvalidParameter(
                f"refusing to listen on {host} without TLS: TCP needs client certificates "
                "(--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY)")
    backend = s.get("backend") or os.environ.get("VMCONTAINER_BACKEND") or "qemu"
    if backend not in ("qemu", "libvirt"):
        raise InvalidParameter(f"invalid backend {backend!r}: use qemu or libvirt")
    uri = s.get("libvirt-uri") or os.environ.get("VMCONTAINER_LIBVIRT_URI") or ""
    if uri and "://" not in uri:
        raise InvalidParameter(f"invalid libvirt URI {uri!r}: e.g. qemu:///system, "
                               "qemu+ssh://user@host/system")
    try:
        mode = network_mode(s.get("network-mode"))
    except InvalidParameter as err:
        if "network-mode" in file:
            raise InvalidParameter(f"unable to configure the daemon with file {path}: "
                                   f"{err}") from None
        raise
    if backend == "libvirt" and is_remote(uri) and mode == "bridge":
        # Bridge mode puts each VM's tap on a bridge of this host; QEMU on another
        # host cannot open it. So a remote URI defaults to user networking (ports
        # then listen on the libvirt host, where QEMU runs) and refuses bridge.
        if s.get("network-mode") or os.environ.get("VMCONTAINER_NETWORK"):
            raise InvalidParameter(
                f"bridge networking needs the VMs on this host, and {uri} is a remote "
                "libvirt host: use --network-mode user")
        mode = "user"
    registries = RegistryPolicy.from_config(s.get("insecure-registries") or (),
                                            mirrors=s.get("registry-mirrors") or ())
    return DaemonConfig(hosts=hosts, debug=bool(s["debug"]),
                        data_root=Path(s["data-root"]) if s.get("data-root") else None,
                        group=s.get("group", "vmcontainer"), tls=tls,
                        insecure_registries=registries.insecure,
                        registry_mirrors=registries.mirrors,
                        registry_certs_dir=str(s.get("registry-certs-dir") or ""),
                        backend=backend, libvirt_uri=uri,
                        libvirt_pool=s.get("libvirt-pool")
                        or os.environ.get("VMCONTAINER_LIBVIRT_POOL") or "default",
                        network_mode=mode)
