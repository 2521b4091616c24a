"""Docker's image-inspect document (``docker image inspect``; Engine API
``ImageInspect`` in moby's ``api/swagger.yaml``) built from an :class:`Image`.

``Config`` and ``ContainerConfig`` are Docker's ``container.Config``: every field
Docker always writes, in Docker's order, then the ones it omits when empty. The
``GraphDriver`` is this store's: ``{"Name": "vmcontainer", "Data": {"BaseDisk": path}}``
(``BaseDisk`` once the ext4 base disk has been built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmcontainer.image.model import Image

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time, which Docker prints for unknown times."""

_ALWAYS: tuple[tuple[str, Any], ...] = (
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
    ("AttachStdout", False), ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False),
    ("OpenStdin", False), ("StdinOnce", False), ("Env", None), ("Cmd", None),
    ("Healthcheck", None), ("ArgsEscaped", None), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("NetworkDisabled", None), ("MacAddress", None),
    ("OnBuild", None), ("Labels", None), ("StopSignal", None), ("StopTimeout", None),
    ("Shell", None),
)
_OMIT_EMPTY = frozenset({"ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
                         "MacAddress", "StopSignal", "StopTimeout", "Shell"})


def container_config(doc: object) -> dict[str, Any]:
    """``doc`` (an image's ``config`` object, maybe absent) as Docker's full
    ``container.Config``: defaults filled in, unknown keys kept at the end."""
    given = doc if isinstance(doc, dict) else {}
    out: dict[str, Any] = {}
    for key, default in _ALWAYS:
        value = given.get(key, default)
        if key in _OMIT_EMPTY and not value:
            continue
        out[key] = value
    known = {key for key, _ in _ALWAYS}
    out.update({k: v for k, v in given.items() if k not in known})
    return out


def inspect_image(image: Image, base_disk: Path | None = None) -> dict[str, Any]:
    """The ``docker image inspect`` object for ``image``; ``base_disk`` is its ext4
    base disk if built."""
    config = image.config
    return {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": str(config.get("parent") or ""),  # docker commit's (moby image.V1Image)
        "Comment": config.get("comment") or "",
        "Created": image.created or ZERO_TIME,
        "Container": config.get("container") or "",
        "ContainerConfig": container_config(config.get("container_config")),
        "DockerVersion": config.get("docker_version") or "",
        "Author": config.get("author") or "",
        "Config": container_config(config.get("config")),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "vmcontainer",
                        "Data": {"BaseDisk": str(base_disk)} if base_disk else {}},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": ZERO_TIME},
    }
