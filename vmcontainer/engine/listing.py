"""``docker ps``: Docker's ContainerSummary objects and list filters
(Engine API v1.45, ContainerList)."""

from __future__ import annotations

from typing import Any

from vmcontainer.engine.container import Container, current_settings
from vmcontainer.engine.humanize import parse_time, ps_status
from vmcontainer.engine.state import Status
from vmcontainer.errors import InvalidParameter
from vmcontainer.network.ports import ps_ports

FILTERS = {"status", "name", "id", "label", "ancestor", "exited", "before", "since"}
STATUSES = {str(s) for s in Status}


def summary(c: Container, image_names: dict[str, str]) -> dict[str, Any]:
    """ContainerSummary of ``c``; ``image_names`` maps image IDs to a tag to show."""
    cmd = " ".join([c.path, *c.args])
    settings = current_settings(c)
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.config.get("Image") or image_names.get(c.image_id, c.image_id),
        "ImageID": c.image_id,
        "Command": cmd,
        "Created": int(parse_time(c.created).timestamp()),
        "Ports": ps_ports(settings["Ports"]),
        "Labels": c.config.get("Labels") or {},
        "State": str(c.state.status),
        "Status": ps_status(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode", "none")},
        "NetworkSettings": {"Networks": settings["Networks"]},
        "Mounts": [],
    }


def _label_match(c: Container, want: str) -> bool:
    labels = c.config.get("Labels") or {}
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _one(key: str, v: str, c: Container, image_ids: dict[str, str]) -> bool:
    """Whether ``c`` passes filter ``key=v``."""
    if key == "status":
        if v not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={v}'")
        return str(c.state.status) == v
    if key == "name":
        return v.lstrip("/") in c.name
    if key == "id":
        return c.id.startswith(v)
    if key == "label":
        return _label_match(c, v)
    if key == "ancestor":
        return c.image_id == image_ids.get(v, v) or c.config.get("Image") == v
    if key == "exited":
        return c.state.status == Status.EXITED and str(c.state.exit_code) == v
    return True  # before/since are applied by the caller, over the whole list


def matches(c: Container, filters: dict[str, list[str]], image_ids: dict[str, str]) -> bool:
    """Whether ``c`` passes every filter: values of one filter are OR-ed (labels
    AND-ed), filters AND-ed, as Docker does. ``image_ids`` maps references to image
    IDs. Raises InvalidParameter for an unknown filter or status."""
    for key, values in filters.items():
        if key not in FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        if not values:
            continue
        combine = all if key == "label" else any
        if not combine(_one(key, v, c, image_ids) for v in values):
            return False
    return True
