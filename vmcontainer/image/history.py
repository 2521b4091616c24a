"""``docker history``: an image's history from its config (Engine API v1.45,
ImageHistory: ``[{"Id", "Created", "CreatedBy", "Tags", "Size", "Comment"}]``,
newest first).

As Docker: each config ``history`` entry is one row; the entries that made a
layer (``empty_layer`` not true) take that layer's size, bottom-up; the newest row
carries the image's ID and tags, the others ``<missing>`` (no local image is
built from them). A config without history gets one row per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vmcontainer.image.model import Image


def _unix(text: object) -> int:
    if not isinstance(text, str) or not text:
        return 0
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def history(image: Image, layer_sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Rows newest first; ``layer_sizes`` are the image's layer sizes, bottom first."""
    entries = image.config.get("history")
    if not isinstance(entries, list) or not entries:
        entries = [{"created": image.created, "created_by": ""} for _ in layer_sizes] or \
            [{"created": image.created, "created_by": "", "empty_layer": True}]
    sizes = list(layer_sizes)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        e = entry if isinstance(entry, dict) else {}
        size = 0 if e.get("empty_layer") else (sizes.pop(0) if sizes else 0)
        rows.append({"Id": "<missing>", "Created": _unix(e.get("created")),
                     "CreatedBy": str(e.get("created_by") or ""), "Tags": None,
                     "Size": size, "Comment": str(e.get("comment") or "")})
    rows.reverse()
    rows[0]["Id"] = image.id
    rows[0]["Tags"] = list(image.repo_tags) or None
    return rows
