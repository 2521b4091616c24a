"""``docker commit``: a new image = the container's image + one layer of the
container's changes, with the container's config (and ``--change``s).

The layer is what the agent exported for the added and changed paths (a tar),
plus an OCI whiteout (``.wh.<name>``) for each deleted path; uncompressed, as
``docker import`` layers here. ``changes`` are Dockerfile instructions as Docker's
``--change`` takes them (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK is not supported).
"""

from __future__ import annotations

import json
import shlex
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vmcontainer.errors import InvalidParameter
from vmcontainer.image import oci
from vmcontainer.image.archive import StagedImage
from vmcontainer.image.catalog import ManifestInfo
from vmcontainer.image.importer import CHANGE_KEYS, rfc3339_now
from vmcontainer.image.oci import Descriptor
from vmcontainer.image.reference import Reference


def build_layer(exported: Path, deleted: Sequence[bytes], out: Path) -> None:
    """Write the layer ``out``: every entry of the tar ``exported``, then a
    whiteout for each deleted path (absolute, bytes)."""
    with tarfile.open(exported, "r:", encoding="utf-8", errors="surrogateescape") as src, \
            tarfile.open(out, "w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                         errors="surrogateescape") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        for path in deleted:
            parent, _, name = path.decode(errors="surrogateescape").rpartition("/")
            info = tarfile.TarInfo(f"{parent.lstrip('/')}/.wh.{name}".lstrip("/"))
            info.mode = 0o600
            dst.addfile(info)


def _json_or_shell(value: str, shell: bool) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        if isinstance(doc, list) and all(isinstance(v, str) for v in doc):
            return doc
    return ["/bin/sh", "-c", value] if shell else value.split()


def _pairs(value: str, instr: str) -> dict[str, str]:
    words = shlex.split(value)
    if len(words) >= 2 and "=" not in words[0]:  # legacy "ENV key value ..."
        return {words[0]: value.split(None, 1)[1].strip()}
    out = {}
    for w in words:
        key, sep, val = w.partition("=")
        if not sep or not key:
            raise InvalidParameter(f"{instr} names can not be blank" if not key else
                                   f"Syntax error - can't find = in \"{w}\". Must be of the "
                                   "form: name=value")
        out[key] = val
    return out


def apply_changes(config: dict[str, Any], changes: Sequence[str]) -> dict[str, Any]:
    """``config`` (a container config) with Docker's ``--change`` instructions
    applied. Raises InvalidParameter (Docker's wording) for others."""
    out = dict(config)
    for line in changes:
        instr, _, rest = line.strip().partition(" ")
        word, rest = instr.upper(), rest.strip()
        if word == "CMD":
            out["Cmd"] = _json_or_shell(rest, True)
        elif word == "ENTRYPOINT":
            out["Entrypoint"] = _json_or_shell(rest, True)
        elif word == "ENV":
            env = [e for e in out.get("Env") or []]
            for key, val in _pairs(rest, "ENV").items():
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
            out["Env"] = env
        elif word == "LABEL":
            out["Labels"] = {**(out.get("Labels") or {}), **_pairs(rest, "LABEL")}
        elif word == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            out["ExposedPorts"] = ports
        elif word == "VOLUME":
            vols = dict(out.get("Volumes") or {})
            for v in _json_or_shell(rest, False):
                vols[v] = {}
            out["Volumes"] = vols
        elif word in ("WORKDIR", "USER", "STOPSIGNAL"):
            key = {"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}[word]
            out[key] = rest
        elif word == "ONBUILD":
            out["OnBuild"] = [*(out.get("OnBuild") or []), rest]
        else:
            raise InvalidParameter(f"{instr} is not a valid change command")
    return out


def stage_commit(staging: Path, layer: Path, parent_id: str, parent_config: Mapping[str, Any],
                 parent_manifest: ManifestInfo, run_config: Mapping[str, Any],
                 ref: Reference | None, comment: str, author: str, created_by: str) -> StagedImage:
    """Stage the committed image in ``staging`` (``layer`` is moved there). Its
    config records ``parent_id`` as Docker's does ("parent", shown by inspect)."""
    diff_id = oci.sha256_file(layer)
    layer_desc = Descriptor(oci.MEDIA_LAYER, diff_id, layer.stat().st_size)
    layer.rename(staging / diff_id.split(":", 1)[1])
    created = rfc3339_now()
    rootfs = dict(parent_config.get("rootfs") or {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), diff_id]
    history = [*(parent_config.get("history") or []),
               {"created": created, "created_by": created_by,
                **({"author": author} if author else {}),
                **({"comment": comment} if comment else {})}]
    config = {key: value for key, value in run_config.items() if key in CHANGE_KEYS}
    doc: dict[str, Any] = {
        "architecture": parent_config.get("architecture", "amd64"),
        "os": parent_config.get("os", "linux"), "created": created, "config": config,
        "rootfs": rootfs, "history": history, "parent": parent_id}
    if author:
        doc["author"] = author
    if comment:
        doc["comment"] = comment
    raw = json.dumps(doc, separators=(",", ":")).encode()
    config_desc = Descriptor(oci.MEDIA_CONFIG, oci.sha256_bytes(raw), len(raw))
    (staging / config_desc.digest.split(":", 1)[1]).write_bytes(raw)
    manifest = oci.canonical_json({
        "schemaVersion": 2, "mediaType": oci.MEDIA_MANIFEST, "config": config_desc.to_json(),
        "layers": [d.to_json() for d in (*parent_manifest.layers, layer_desc)]})
    return StagedImage(staging, manifest, config_desc.digest, (config_desc, layer_desc),
                       (ref,) if ref is not None else ())
