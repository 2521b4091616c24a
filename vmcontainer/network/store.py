"""Bridge networks on disk: one JSON record per network under
``<root>/network/<id>.json`` (written atomically), holding Docker's fields and the
network's endpoints (container, address, MAC, tap, aliases).

Names follow Docker's network name rules; IDs are 64 hex digits. Lookups accept a
full name, a full ID or a unique ID prefix, as Docker's do.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vmcontainer.errors import Conflict, InvalidParameter, NotFound

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class NetworkNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"network {ref} not found")


@dataclass(frozen=True)
class EndpointRecord:
    """One container on one network. ``ip``/``mac`` are its NIC's; ``tap`` the host
    side; ``aliases`` its ``--network-alias`` names; ``resolver``: the network's
    gateway is the container's name server (its resolv.conf names it)."""

    container_id: str
    container_name: str
    ip: str
    mac: str
    tap: str
    aliases: tuple[str, ...] = ()
    resolver: bool = False

    @property
    def endpoint_id(self) -> str:
        import hashlib

        return hashlib.sha256(f"{self.container_id}:{self.tap}".encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"container_id": self.container_id, "container_name": self.container_name,
                "ip": self.ip, "mac": self.mac, "tap": self.tap, "aliases": list(self.aliases),
                "resolver": self.resolver}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EndpointRecord:
        return cls(d["container_id"], d["container_name"], d["ip"], d["mac"], d["tap"],
                   tuple(d.get("aliases") or ()), bool(d.get("resolver", False)))


@dataclass(frozen=True)
class NetworkRecord:
    """A bridge network. ``builtin`` marks the default ``bridge`` network (never
    removed, no name resolution, as in Docker)."""

    id: str
    name: str
    created: str
    subnet: str
    gateway: str
    ip_range: str = ""
    internal: bool = False
    builtin: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, EndpointRecord] = field(default_factory=dict)
    attachable: bool = False
    ipam_options: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        """The Linux bridge's name (≤ 15 bytes)."""
        return "vmcbr-" + self.id[:9]

    @property
    def prefix_len(self) -> int:
        return int(self.subnet.split("/")[1])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created": self.created,
                "subnet": self.subnet, "gateway": self.gateway, "ip_range": self.ip_range,
                "internal": self.internal, "builtin": self.builtin, "labels": self.labels,
                "options": self.options,
                "endpoints": {k: e.to_json() for k, e in self.endpoints.items()},
                "attachable": self.attachable, "ipam_options": self.ipam_options}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NetworkRecord:
        return cls(d["id"], d["name"], d["created"], d["subnet"], d["gateway"],
                   d.get("ip_range", ""), d.get("internal", False), d.get("builtin", False),
                   d.get("labels") or {}, d.get("options") or {},
                   {k: EndpointRecord.from_json(e) for k, e in (d.get("endpoints") or {}).items()},
                   bool(d.get("attachable", False)), d.get("ipam_options") or {})

    def with_endpoint(self, ep: EndpointRecord) -> NetworkRecord:
        return replace(self, endpoints={**self.endpoints, ep.container_id: ep})

    def without_endpoint(self, container_id: str) -> NetworkRecord:
        return replace(self, endpoints={k: e for k, e in self.endpoints.items()
                                        if k != container_id})


class NetworkStore:
    """The records under ``directory`` (created on first save)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def all(self) -> list[NetworkRecord]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.glob("*.json")):
            out.append(NetworkRecord.from_json(json.loads(p.read_text())))
        return out

    def find(self, ref: str) -> NetworkRecord:
        """By full ID, full name, then unique ID prefix. Raises NetworkNotFound."""
        nets = self.all()
        for n in nets:
            if ref == n.id:
                return n
        for n in nets:
            if ref == n.name:
                return n
        matches = [n for n in nets if ref and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(matches)} matches found "
                                   "based on ID prefix)")
        raise NetworkNotFound(ref)

    def check_new_name(self, name: str) -> None:
        if not NAME.match(name) or len(name) > 128:
            raise InvalidParameter(f'invalid network name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                                   "are allowed")
        if name in ("host", "none", "default") or any(n.name == name for n in self.all()):
            raise Conflict(f"network with name {name} already exists")

    def save(self, net: NetworkRecord) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{net.id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(net.to_json(), indent=1))
        os.replace(tmp, path)

    def delete(self, net_id: str) -> None:
        (self.dir / f"{net_id}.json").unlink(missing_ok=True)
