"""ContainerSpec: what a create request asks for (a subset of Docker's create body,
Engine API v1.45 ContainerCreate: Config + HostConfig), parsed once, frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmcontainer.volume.mounts import MountPoint


@dataclass(frozen=True)
class ContainerSpec:
    """``cmd``/``entrypoint`` None means "the image's"; ``env`` holds ``KEY=VALUE``
    items; ``memory_bytes`` 0 means the default VM size; ``nano_cpus`` is CPUs * 1e9
    (0: default); ``name`` "" means a generated one; ``stop_signal`` "" means the
    image's STOPSIGNAL or SIGTERM; ``stop_timeout`` None means 10 s;
    ``restart_policy`` is Docker's name (``no``, ``always``, ``unless-stopped``,
    ``on-failure``) and ``restart_max_retries`` its MaximumRetryCount (0: no limit);
    ``init`` is ``docker run --init``; ``healthcheck`` a HealthConfig (Test,
    Interval, Timeout, StartPeriod, Retries; durations in ns) overriding the image's;
    ``resources`` the other HostConfig resource fields the request set (Docker's
    keys: CpuShares, MemoryReservation, ...; stored, not enforced by a VM);
    ``log_options`` the json-file driver's options (max-size, max-file, ...)."""

    image: str
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    memory_bytes: int = 0
    nano_cpus: int = 0
    auto_remove: bool = False
    tty: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None
    restart_policy: str = "no"
    restart_max_retries: int = 0
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    open_stdin: bool = False
    stdin_once: bool = False
    console_size: tuple[int, int] | None = None  # (rows, cols), Docker's [height, width]
    init: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # "name:ip" items
    group_add: tuple[str, ...] = ()  # supplementary groups: names (image's) or numbers
    healthcheck: dict[str, object] | None = None  # Docker's HealthConfig; None: the image's
    resources: dict[str, Any] = field(default_factory=dict)  # other HostConfig resources given
    log_options: dict[str, str] = field(default_factory=dict)  # HostConfig.LogConfig.Config
    mounts: tuple[MountPoint, ...] = ()  # Binds, Mounts, Tmpfs and Config.Volumes, parsed
    volumes: tuple[str, ...] = ()  # Config.Volumes of the request (anonymous volumes)
    mount_config: dict[str, Any] = field(default_factory=dict)  # Binds, Mounts, Tmpfs,
    # ReadonlyRootfs as the request gave them (recorded in HostConfig)
    network_mode: str = "default"  # "default", "bridge", "none" or a network name
    port_bindings: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # Docker's
    publish_all: bool = False  # docker run -P
    exposed_ports: tuple[str, ...] = ()  # "80/tcp" items, besides the image's
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # network → config
