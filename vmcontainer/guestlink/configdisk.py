"""The config disk: an ISO 9660 image (Rock Ridge) holding ``/config.json``.

Layout and JSON schema: guest/PROTOCOL.md, "Container config (the config disk)".
Written with pycdlib; the agent mounts it read-only (virtio-blk, serial ``config``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pycdlib

# The config disk's own version (PROTOCOL.md, "Container config"): unchanged by
# protocol version 3, which added only frames (ACK, RESUME, RESUMED).
CONFIG_VERSION = 2


def write_config_disk(path: Path, config: dict[str, Any]) -> None:
    """Write ``config`` (the PROTOCOL.md object, ``version`` added) as ``path``.

    Atomic: written to a temporary name in the same directory, then renamed.
    Raises OSError on I/O failure.
    """
    body = json.dumps({"version": CONFIG_VERSION, **config}, indent=1).encode()
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, rock_ridge="1.09", vol_ident="VMC_CONFIG")
    iso.add_fp(io.BytesIO(body), len(body), iso_path="/CONFIG.JSON;1", rr_name="config.json")
    tmp = path.with_name(path.name + ".tmp")
    try:
        iso.write(str(tmp))
        os.replace(tmp, path)
    finally:
        iso.close()
        tmp.unlink(missing_ok=True)


def read_config_disk(path: Path) -> dict[str, Any]:
    """Read back ``/config.json`` from a config disk (for inspection and tests)."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/config.json")
    finally:
        iso.close()
    value: dict[str, Any] = json.loads(out.getvalue())
    return value
