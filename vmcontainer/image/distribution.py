"""``docker manifest``-style inspection of an image in its registry, without pulling
it (Engine API v1.45 ``DistributionInspect``, ``GET /distribution/{name}/json``).

The manifest or index the reference names (``skopeo inspect --raw``) gives the
``Descriptor`` (media type, digest, size of those exact bytes). ``Platforms``: an
index lists them in its entries; for a single manifest, as moby's
``distribution_routes.go`` does, the image config is fetched
(``skopeo inspect --config --raw``) and its ``os``/``architecture``/``variant`` used.
"""

from __future__ import annotations

import json
from pathlib import Path

from vmcontainer.errors import InvalidParameter
from vmcontainer.image import oci
from vmcontainer.image.errors import ToolFailed
from vmcontainer.image.pull import MAX_MANIFEST_BYTES, inspect_manifest
from vmcontainer.image.reference import normalize
from vmcontainer.image.registry import Credentials, RegistryPolicy, registry_error
from vmcontainer.image.staging import staging_dir
from vmcontainer.image.tools import run

_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")


def _platform(doc: object) -> dict[str, object] | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("os"), str):
        return None
    return {k: doc[k] for k in _PLATFORM_KEYS if doc.get(k)}


def inspect_distribution(reference: str, policy: RegistryPolicy, creds: Credentials,
                         tmp_dir: Path) -> dict[str, object]:
    """``{"Descriptor": {"mediaType", "digest", "size"}, "Platforms": [{"architecture",
    "os", ...}]}`` for ``reference`` (normalised; ``latest`` if no tag). Raises
    InvalidReference, NotFound, Unauthorized, Forbidden, Unavailable, InvalidParameter
    (a malformed manifest), System. ``tmp_dir``: where skopeo's scratch files go."""
    ref = normalize(reference)
    with staging_dir(tmp_dir, "distribution-") as work:
        raw, doc = inspect_manifest(ref, str(ref), policy, creds, work)
        digest = oci.sha256_bytes(raw)
        media = doc.get("mediaType") or (oci.MEDIA_INDEX if "manifests" in doc
                                         else oci.MEDIA_MANIFEST)
        entries = doc.get("manifests")
        if isinstance(entries, list):
            found = (_platform(e.get("platform")) if isinstance(e, dict) else None
                     for e in entries)
            platforms = [p for p in found if p is not None]
        else:
            argv = ["skopeo", "inspect", "--config", "--raw", "--retry-times", "1",
                    *policy.skopeo_args("", ref.domain, creds, work),
                    f"docker://{ref.name}@{digest}"]
            try:
                config = run(argv, env={"TMPDIR": str(work)}, timeout=300)
            except ToolFailed as err:
                raise registry_error(err, ref) from err
            if len(config) > MAX_MANIFEST_BYTES:
                raise InvalidParameter(f"config of {ref.familiar} is larger than 4 MiB")
            try:
                platform = _platform(json.loads(config))
            except ValueError as err:
                raise InvalidParameter(f"config of {ref.familiar} is not JSON") from err
            platforms = [platform] if platform else []
    return {"Descriptor": {"mediaType": media, "digest": digest, "size": len(raw)},
            "Platforms": platforms}
