"""Published ports: Docker's PortBindings/ExposedPorts checked, and bound host ports
chosen at start.

Shapes (Engine API v1.45): ``PortBindings`` ``{"80/tcp": [{"HostIp": "",
"HostPort": "8080"}]}``; ``ExposedPorts`` ``{"80/tcp": {}}``. A binding's
``HostPort`` may be empty or ``0`` (any free port), one port, or a range
``8000-8010`` (the first free one). Unlike Docker, an empty ``HostIp`` binds the
daemon's default address, 127.0.0.1 unless configured: a VM container's ports are
not opened to the whole network unless asked (DESIGN.md, "Networking").
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmcontainer.errors import InvalidParameter, System

PROTOCOLS = ("tcp", "udp")
#: Docker's ephemeral range for ports picked by the daemon (moby portallocator).
EPHEMERAL = (32768, 60999)


@dataclass(frozen=True, order=True)
class PortBinding:
    """One bound port: ``host_ip``:``host_port`` → the container's ``port``/``protocol``."""

    port: int
    protocol: str
    host_ip: str
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.port}/{self.protocol}"


def parse_port_key(key: str) -> tuple[int, str]:
    """``"80/tcp"`` (or ``"80"``: tcp) → (80, "tcp"). Raises InvalidParameter."""
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidParameter(f"invalid containerPort: {port}")
    return int(port), proto


def _host_range(text: str) -> tuple[int, int]:
    """``""``/``"0"`` → (0, 0); ``"8080"``; ``"8000-8010"``. Raises InvalidParameter."""
    if text in ("", "0"):
        return 0, 0
    lo, dash, hi = text.partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise InvalidParameter(f"invalid hostPort: {text}")
    first, last = int(lo), int(hi) if dash else int(lo)
    if not 1 <= first <= last <= 65535:
        raise InvalidParameter(f"invalid hostPort: {text}")
    return first, last


def check_port_bindings(bindings: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Validate HostConfig.PortBindings; returns it normalised (keys with their
    protocol, ``HostIp``/``HostPort`` strings). Raises InvalidParameter."""
    out: dict[str, list[dict[str, str]]] = {}
    for key, items in bindings.items():
        port, proto = parse_port_key(str(key))
        norm = out.setdefault(f"{port}/{proto}", [])
        if items is None:
            continue
        if not isinstance(items, list):
            raise InvalidParameter(f"invalid port binding for {key}: expected a list")
        for item in items:
            if not isinstance(item, Mapping):
                raise InvalidParameter(f"invalid port binding for {key}: expected objects")
            host_ip = item.get("HostIp") or ""
            host_port = item.get("HostPort") or ""
            if not isinstance(host_ip, str) or not isinstance(host_port, str):
                raise InvalidParameter(f"invalid port binding for {key}: strings expected")
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip)
                except ValueError as err:
                    raise InvalidParameter(f"invalid IP address: {host_ip}") from err
            _host_range(host_port)
            norm.append({"HostIp": host_ip, "HostPort": host_port})
    return out


def check_exposed_ports(exposed: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate Config.ExposedPorts; returns it with normalised keys."""
    out: dict[str, dict[str, Any]] = {}
    for key in exposed:
        port, proto = parse_port_key(str(key))
        out[f"{port}/{proto}"] = {}
    return out


def _free(host_ip: str, port: int, protocol: str) -> int | None:
    """Bind ``host_ip``:``port`` (0: any) to see that it is free; the port, or None
    when taken. Raises InvalidParameter when the address is not the host's."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as QEMU binds
        try:
            s.bind((host_ip, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return None
            if err.errno == errno.EADDRNOTAVAIL:
                raise InvalidParameter(f"cannot bind a published port to {host_ip}: not an "
                                       "address of this host") from err
            raise
        bound: int = s.getsockname()[1]
        return bound


def bind_ports(bindings: Mapping[str, list[dict[str, str]]], publish_all: bool,
               exposed: Mapping[str, Any], default_ip: str, who: str) -> list[PortBinding]:
    """The ports to bind at start: every PortBindings entry, plus (``publish_all``,
    ``docker run -P``) every exposed port without one, on a free ephemeral port.

    ``who`` names the endpoint in Docker's error. Raises System ("port is already
    allocated") when an asked port is taken, InvalidParameter for bad input.
    """
    wanted: list[tuple[int, str, str, int, int]] = []
    for key, items in bindings.items():
        port, proto = parse_port_key(key)
        for item in items or [{"HostIp": "", "HostPort": ""}]:
            first, last = _host_range(item.get("HostPort", ""))
            wanted.append((port, proto, item.get("HostIp") or default_ip, first, last))
    if publish_all:
        for key in exposed:
            port, proto = parse_port_key(key)
            if not any(w[0] == port and w[1] == proto for w in wanted):
                wanted.append((port, proto, default_ip, 0, 0))
    out: list[PortBinding] = []
    for port, proto, host_ip, first, last in wanted:
        taken = {b.host_port for b in out if b.protocol == proto and b.host_ip == host_ip}
        out.append(PortBinding(port, proto, host_ip,
                               _pick(host_ip, proto, first, last, taken, who)))
    return sorted(out)


def _pick(host_ip: str, proto: str, first: int, last: int, taken: set[int], who: str) -> int:
    if first == 0:
        for _ in range(64):
            port = _free(host_ip, 0, proto)
            if port and EPHEMERAL[0] <= port <= EPHEMERAL[1] and port not in taken:
                return port
        first, last = EPHEMERAL
    for port in range(first, last + 1):
        if port not in taken and _free(host_ip, port, proto):
            return port
    shown = f"{first}" if first == last else f"{first}-{last}"
    raise System(f"driver failed programming external connectivity on endpoint {who}: "
                   f"Bind for {host_ip}:{shown} failed: port is already allocated")


def ports_settings(bound: list[PortBinding], exposed: Mapping[str, Any]) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed or bound port, its bindings (or null)."""
    ports: dict[str, Any] = {key: None for key in exposed}
    for b in bound:
        entries = ports.get(b.key) or []
        entries.append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        ports[b.key] = entries
    return ports


def ps_ports(settings_ports: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ContainerSummary.Ports from NetworkSettings.Ports (``docker ps`` PORTS)."""
    out: list[dict[str, Any]] = []
    for key, entries in settings_ports.items():
        port, proto = parse_port_key(key)
        if not entries:
            out.append({"PrivatePort": port, "Type": proto})
        for e in entries or ():
            out.append({"IP": e["HostIp"], "PrivatePort": port,
                        "PublicPort": int(e["HostPort"]), "Type": proto})
    return out
