"""``docker pull``: one image from a registry into a staging directory, via skopeo.

Steps (each blocking; :meth:`ImageStore.pull` runs them and commits the result):

1. :func:`resolve` — ``skopeo inspect --raw docker://REF``: the manifest the
   reference names and its digest (Docker's ``RepoDigests`` entry). A manifest list
   or OCI index is narrowed to its linux/amd64 entry, fetched by digest; none there
   raises Docker's ``no matching manifest for linux/amd64 in the manifest list
   entries``. Docker schema 2 and OCI image manifests are accepted; schema 1 is not.
2. :func:`fetch` — ``skopeo copy docker://NAME@<manifest digest> dir:<staging>``:
   blobs land as ``<staging>/<hex>``, each digest verified by skopeo. The ``dir:``
   transport keeps the config byte for byte, so the image ID is the registry's (an
   ``oci:`` destination would re-encode a Docker config and change it). Progress
   comes from skopeo's ``Copying blob sha256:…`` lines and the files appearing.
3. :func:`oci_manifest` — the manifest the store keeps: OCI manifests unchanged,
   Docker schema 2 ones with OCI media types (same config and layer blobs).

Not yet: layers shared with an image already stored are fetched again (they are
still stored once); ``dir:`` cannot reuse blobs it did not write itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.errors import InvalidParameter, NotFound, System, Unauthorized
from vmcontainer.image import oci
from vmcontainer.image.errors import ToolFailed
from vmcontainer.image.oci import Descriptor
from vmcontainer.image.reference import Reference
from vmcontainer.image.registry import Credentials, RegistryPolicy, registry_error
from vmcontainer.image.tools import run, run_lines

log = logging.getLogger(__name__)

PLATFORM = ("linux", "amd64")
"""The only platform vmcontainer's guests run: (os, architecture)."""
MAX_MANIFEST_BYTES = 4 << 20
"""Largest manifest accepted (the distribution spec's recommended limit)."""
POLL_S = 0.25
"""How often the staging directory is looked at for progress, in seconds."""

_LISTS = {oci.MEDIA_INDEX, oci.DOCKER_MANIFEST_LIST}
_DOCKER_TO_OCI = {
    oci.DOCKER_CONFIG: oci.MEDIA_CONFIG,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": oci.MEDIA_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": oci.MEDIA_LAYER_ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": oci.MEDIA_LAYER,
}


@dataclass(frozen=True)
class Event:
    """One progress step, in the words of Docker's pull progress: ``status`` (``Pulling
    fs layer``, ``Downloading``, ``Download complete``, ``Pull complete``, ``Already
    exists``), ``layer`` (the layer's short ID, 12 hex digits) and, for
    ``Downloading``, bytes so far and in all (None when unknown)."""

    status: str
    layer: str
    current: int | None = None
    total: int | None = None


Progress = Callable[[Event], None]


@dataclass(frozen=True)
class Resolved:
    """What the reference names at the registry: ``repo_digest`` (digest of the
    document the reference names, list or manifest), ``manifest`` (the linux/amd64
    image manifest, raw bytes) with its ``digest``, ``config`` and ``layers``."""

    ref: Reference
    repo_digest: str
    manifest: bytes
    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def short_id(digest: str) -> str:
    """Docker's layer ID in progress lines: 12 hex digits."""
    return digest.split(":", 1)[-1][:12]


def inspect_manifest(ref: Reference, target: str, policy: RegistryPolicy, creds: Credentials,
                     workdir: Path) -> tuple[bytes, dict[str, object]]:
    """The manifest (or index) ``target`` names, raw and parsed; raises as
    :func:`resolve`."""
    argv = ["skopeo", "inspect", "--raw", "--retry-times", "1",
            *policy.skopeo_args("", ref.domain, creds, workdir), f"docker://{target}"]
    try:
        raw = run(argv, env={"TMPDIR": str(workdir)}, timeout=300)
    except ToolFailed as err:
        failure = registry_error(err, ref)
        if isinstance(failure, Unauthorized):
            # a 500 as in Docker 20.10: the docker CLI answers a 401 by prompting for a login
            failure = System(_no_credentials(ref, target, policy) if creds.empty
                             else str(failure))
        raise failure from err
    if len(raw) > MAX_MANIFEST_BYTES:
        raise InvalidParameter(f"manifest of {ref.familiar} is larger than 4 MiB")
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise InvalidParameter(f"manifest of {ref.familiar} is not JSON") from err
    if not isinstance(doc, dict):
        raise InvalidParameter(f"manifest of {ref.familiar} is not a JSON object")
    return raw, doc


def _no_credentials(ref: Reference, target: str, policy: RegistryPolicy) -> str:
    """Docker's words for a registry that wants credentials none were given for:
    ``Head "http://127.0.0.1:5000/v2/busybox/manifests/latest": no basic auth
    credentials``."""
    from vmcontainer.image.login import scheme

    _, at, digest = target.partition("@")
    which = digest if at else (ref.tag or "latest")
    url = f"{scheme(ref.domain, policy)}://{ref.domain}/v2/{ref.path}/manifests/{which}"
    return f'Head "{url}": no basic auth credentials'


def _pick_platform(doc: dict[str, object]) -> str:
    entries = doc.get("manifests")
    for entry in entries if isinstance(entries, list) else []:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if isinstance(platform, dict) and (platform.get("os"), platform.get("architecture")) \
                == PLATFORM and isinstance(entry.get("digest"), str):
            return str(entry["digest"])
    raise NotFound("no matching manifest for linux/amd64 in the manifest list entries")


def resolve(ref: Reference, policy: RegistryPolicy, creds: Credentials,
            workdir: Path) -> Resolved:
    """Step 1 (see the module). Raises NotFound (no such tag or digest, no
    linux/amd64 entry), Unauthorized, Forbidden, Unavailable (registry unreachable),
    InvalidParameter (a malformed or unsupported manifest), System."""
    raw, doc = inspect_manifest(ref, str(ref), policy, creds, workdir)
    repo_digest = oci.sha256_bytes(raw)
    if ref.digest is not None and ref.digest != repo_digest:
        raise InvalidParameter(f"manifest of {ref.familiar} has digest {repo_digest}")
    manifest, digest = raw, repo_digest
    if doc.get("mediaType") in _LISTS or "manifests" in doc:
        digest = _pick_platform(doc)
        manifest, doc = inspect_manifest(ref, f"{ref.name}@{digest}", policy, creds, workdir)
        if oci.sha256_bytes(manifest) != digest:
            raise InvalidParameter(f"manifest {digest} of {ref.familiar}: digest mismatch")
    if doc.get("schemaVersion") != 2 or not isinstance(doc.get("layers"), list):
        raise InvalidParameter(f"{ref.familiar}: unsupported manifest (only Docker schema 2 "
                               "and OCI image manifests can be pulled)")
    try:
        config = Descriptor.from_json(doc.get("config"))
        layers = tuple(Descriptor.from_json(d) for d in doc["layers"])  # type: ignore[attr-defined]
    except (ValueError, TypeError) as err:
        raise InvalidParameter(f"{ref.familiar}: malformed manifest: {err}") from err
    return Resolved(ref, repo_digest, manifest, digest, config, layers)


def oci_manifest(resolved: Resolved) -> bytes:
    """Step 3: the manifest to store (OCI media types; same blobs)."""
    doc = json.loads(resolved.manifest)
    if doc.get("mediaType") in (None, oci.MEDIA_MANIFEST):
        return resolved.manifest
    doc["mediaType"] = oci.MEDIA_MANIFEST
    for desc in [doc["config"], *doc["layers"]]:
        desc["mediaType"] = _DOCKER_TO_OCI.get(desc["mediaType"], desc["mediaType"])
    return oci.canonical_json(doc)


class _Watcher:
    """Turns skopeo's output and the staging directory into :class:`Event` s."""

    def __init__(self, resolved: Resolved, staging: Path, progress: Progress) -> None:
        self.layers = {d.digest: d for d in resolved.layers}
        self.staging = staging
        self.progress = progress
        self.started: list[str] = []
        self.done: set[str] = set()

    def line(self, text: str) -> None:
        words = text.split()
        if len(words) >= 3 and words[:2] == ["Copying", "blob"] and words[2] in self.layers \
                and words[2] not in self.started:
            self.started.append(words[2])

    def poll(self) -> None:
        in_flight = [d for d in self.started if d not in self.done]
        for digest in in_flight:
            if (self.staging / digest.split(":", 1)[1]).exists():
                self.done.add(digest)
                self.progress(Event("Download complete", short_id(digest)))
        in_flight = [d for d in self.started if d not in self.done]
        partial = [p for p in self.staging.glob("dir-put-blob*")]
        if len(in_flight) == 1 and len(partial) == 1:
            try:
                size = partial[0].stat().st_size
            except FileNotFoundError:
                return
            digest = in_flight[0]
            self.progress(Event("Downloading", short_id(digest), size, self.layers[digest].size))


def fetch(resolved: Resolved, policy: RegistryPolicy, creds: Credentials, staging: Path,
          workdir: Path, progress: Progress) -> None:
    """Step 2 (see the module) into the empty directory ``staging``. Raises as
    :func:`resolve` when the registry fails mid-copy (Unavailable when it went away)."""
    ref = resolved.ref
    argv = ["skopeo", "--insecure-policy", "--tmpdir", str(workdir), "copy",
            "--retry-times", "1", *policy.skopeo_args("src", ref.domain, creds, workdir),
            f"docker://{ref.name}@{resolved.digest}", f"dir:{staging}"]
    watcher = _Watcher(resolved, staging, progress)

    def on_line(text: str) -> None:
        watcher.line(text)
        watcher.poll()

    try:
        run_lines(argv, env={"TMPDIR": str(workdir)}, on_line=on_line,
                  on_idle=watcher.poll, idle_s=POLL_S)
    except ToolFailed as err:
        raise registry_error(err, ref) from err
    watcher.poll()
    for layer in resolved.layers:
        if layer.digest not in watcher.done:
            watcher.done.add(layer.digest)
            progress(Event("Download complete", short_id(layer.digest)))
