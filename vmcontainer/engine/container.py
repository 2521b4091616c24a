"""The container record: what ``docker inspect`` shows, persisted as JSON.

``config`` and ``host_config`` keep Docker's JSON shapes and key spelling (Engine
API v1.45, ContainerConfig and HostConfig), so inspect renders them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vmcontainer.engine.state import State
from vmcontainer.network.usermode import stopped_settings
from vmcontainer.volume.mounts import MountPoint


@dataclass(frozen=True)
class Container:
    """One container. ``id`` is 64 hex digits; ``name`` has no leading slash;
    ``path``/``args`` is the process (entrypoint + cmd resolved against the image);
    ``image_id`` is ``sha256:<hex>``; ``boot`` records how the VM was booted
    (kernel, initramfs, accelerator, machine type, timings) — empty until started.
    ``restart_count`` counts restarts by the restart policy since the last explicit
    start; ``manually_stopped`` is moby's HasBeenManuallyStopped (set by ``docker
    stop``/``kill``, cleared by ``docker start``): an ``unless-stopped`` container
    so marked is not started again when the daemon starts. ``mounts``: its
    volumes, binds and tmpfs mounts, resolved at create (volume names filled in).
    ``network_settings`` is Docker's NetworkSettings of the last start (addresses, bound ports);
    ``endpoints_config`` the networks it is configured for besides NetworkMode's
    (bridge mode), name → ``{"Aliases": [...], "IPv4Address": ""}``;
    ``left_mode_network``: it was disconnected from NetworkMode's network, which
    it then no longer joins (HostConfig.NetworkMode stays as it was, as in Docker)."""

    id: str
    name: str
    created: str
    path: str
    args: tuple[str, ...]
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: State = field(default_factory=State)
    restart_count: int = 0
    boot: dict[str, Any] = field(default_factory=dict)
    manually_stopped: bool = False
    mounts: tuple[MountPoint, ...] = ()
    network_settings: dict[str, Any] = field(default_factory=dict)
    endpoints_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_mode_network: bool = False

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def with_state(self, state: State) -> Container:
        return replace(self, state=state)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "created": self.created, "path": self.path,
            "args": list(self.args), "image_id": self.image_id, "config": self.config,
            "host_config": self.host_config, "state": self.state.to_json(),
            "restart_count": self.restart_count, "boot": self.boot,
            "manually_stopped": self.manually_stopped,
            "mounts": [m.to_json() for m in self.mounts],
            "network_settings": self.network_settings,
            "endpoints_config": self.endpoints_config,
            "left_mode_network": self.left_mode_network,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Container:
        return cls(
            id=d["id"], name=d["name"], created=d["created"], path=d["path"],
            args=tuple(d["args"]), image_id=d["image_id"], config=d["config"],
            host_config=d["host_config"], state=State.from_json(d["state"]),
            restart_count=d.get("restart_count", 0), boot=d.get("boot", {}),
            manually_stopped=d.get("manually_stopped", False),
            mounts=tuple(MountPoint.from_json(m) for m in d.get("mounts") or ()),
            network_settings=d.get("network_settings") or {},
            endpoints_config=d.get("endpoints_config") or {},
            left_mode_network=bool(d.get("left_mode_network", False)),
        )

    def inspect(self, directory: Path) -> dict[str, Any]:
        """Docker's ContainerInspect object (Engine API v1.45) for this record."""
        return {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": list(self.args),
            "State": self.state.to_docker(),
            "Image": self.image_id,
            "ResolvConfPath": "",
            "HostnamePath": "",
            "HostsPath": "",
            "LogPath": str(directory / f"{self.id}-json.log"),
            "Name": "/" + self.name,
            "RestartCount": self.restart_count,
            "Driver": "qcow2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": self.host_config,
            "GraphDriver": {
                "Name": "qcow2",
                "Data": {"Overlay": str(directory / "rootfs.qcow2")},
            },
            "Mounts": [],
            "Config": self.config,
            "NetworkSettings": current_settings(self),
            "VM": self.boot,
        }


def mode_network(c: Container) -> str:
    """The network NetworkMode names (``default`` is ``bridge``; ``none``)."""
    mode = c.host_config.get("NetworkMode") or "none"
    return "bridge" if mode == "default" else mode


def network_names(c: Container) -> list[str]:
    """The networks ``c`` joins, NetworkMode's first unless it left it."""
    first = mode_network(c)
    return [*([] if c.left_mode_network else [first]),
            *(n for n in c.endpoints_config if n != first)]


def current_settings(c: Container) -> dict[str, Any]:
    """NetworkSettings as inspect shows them: the last start's while the VM runs
    (running, paused, restarting), otherwise the networks it joins at its next
    start, without addresses, with the aliases asked for."""
    if c.state.running and c.network_settings:
        return c.network_settings
    names = network_names(c)
    return stopped_settings(names, {n: list((c.endpoints_config.get(n) or {}).get("Aliases")
                                           or ()) for n in names})
