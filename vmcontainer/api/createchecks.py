"""Create-body options a VM container cannot honour yet, refused with a clear 400
rather than silently ignored (a user who asks for ``--cap-drop`` or
``--device`` must not get a container without it), and strings the guest
cannot carry (NUL bytes). Engine API v1.45, ContainerCreate (HostConfig).
Resource limits (cgroup fields, ulimits, cpusets) are not here: they are stored
and answered with a Warning (``vmcontainer.engine.resources``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmcontainer.errors import InvalidParameter

DOCKER_DEFAULT_SHM = 64 << 20

#: HostConfig keys refused when set (non-empty), with what to call them.
REFUSED_WHEN_SET = {
    "Links": "links (--link)",
    "Sysctls": "sysctls (--sysctl)",
    "Devices": "devices (--device)",
    "DeviceRequests": "device requests (--gpus)",
    "CapDrop": "dropping capabilities (--cap-drop)",
    "SecurityOpt": "security options (--security-opt)",
}
#: Namespace modes: a VM has no host namespace, nor another container's, to join.
NAMESPACE_MODES = {"PidMode": "PID", "IpcMode": "IPC", "UTSMode": "UTS",
                   "UsernsMode": "user", "CgroupnsMode": "cgroup"}


def _is_set(value: Any) -> bool:
    return value not in (None, False, "", 0, [], {})


def refuse_unsupported(body: Mapping[str, Any], host: Mapping[str, Any],
                       warnings: list[str]) -> None:
    """Raises InvalidParameter naming the first option that cannot be honoured;
    adds a create Warning for those with no meaning for a VM."""
    for key, what in REFUSED_WHEN_SET.items():
        if _is_set(host.get(key)):
            raise InvalidParameter(f"{what} is not supported by vmcontainer yet")
    for key, ns in NAMESPACE_MODES.items():
        mode = host.get(key)
        if isinstance(mode, str) and (mode == "host" or mode.startswith("container:")):
            raise InvalidParameter(f"{key} {mode!r}: a VM container has no {ns} namespace "
                                   "shared with the host or other containers")
    shm = host.get("ShmSize")
    if _is_set(shm) and shm != DOCKER_DEFAULT_SHM:
        raise InvalidParameter("a /dev/shm size (--shm-size) other than 64MB is not "
                               "supported by vmcontainer yet")
    if _is_set(host.get("CapAdd")):
        warnings.append("CapAdd has no effect: a VM container's root already has every "
                        "capability inside its own kernel")
    for key in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Hostname", "Image"):
        value = body.get(key)
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise InvalidParameter(f'invalid value for "{key}": contains a NUL byte')
