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
    (bridge mode), name → ``{"Aliases": [...], "IPv4Address": ""}``."""

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


def current_settings(c: Container) -> dict[str, Any]:
    """NetworkSettings as inspect shows them: the last start's while the VM runs
    (running, paused, restarting), the network without addresses otherwise."""
    if c.state.running and c.network_settings:
        return c.network_settings
    return stopped_settings(c.host_config.get("NetworkMode") or "none")
