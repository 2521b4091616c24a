"""``docker push``: one stored image to a registry, via skopeo.

The image's manifest, config and layers are hard-linked from the OCI layout into a
``dir:`` directory (``manifest.json``, ``<hex>`` blobs, ``version``), which
``skopeo copy --preserve-digests dir:… docker://NAME:TAG`` uploads unchanged: the
config keeps its bytes (so a later pull gets the same image ID) and the manifest
its digest, which Docker's last lines report (``v1: digest: sha256:… size: 527``).

Progress in Docker's words (moby ``distribution/push_v2.go``), one line per layer,
named by the short diff ID: ``Preparing``, then ``Layer already exists`` or
``Pushing`` and ``Pushed``. Which layers the registry already has is asked first
with a ``HEAD`` of each blob, as moby's pusher does (``blobSumAlreadyExists``):
skopeo skips those blobs too, but says so only on a terminal. No byte counts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.errors import System, Unauthorized, Unavailable, VmcError
from vmcontainer.image.errors import ToolFailed
from vmcontainer.image.pull import POLL_S, Event, Progress, short_id
from vmcontainer.image.reference import Reference
from vmcontainer.image.regclient import authorized, endpoints
from vmcontainer.image.registry import Credentials, RegistryPolicy, registry_error
from vmcontainer.image.tools import run_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pushable:
    """What to upload: ``manifest`` bytes (with ``digest``), ``blobs`` (digest ->
    file in the layout), ``layers`` (layer digests, manifest order) and their
    ``diff_ids`` (Docker's IDs in progress lines; layer digests when unknown)."""

    manifest: bytes
    digest: str
    blobs: dict[str, Path]
    layers: tuple[str, ...]
    diff_ids: tuple[str, ...]


def stage(item: Pushable, directory: Path) -> None:
    """The ``dir:`` layout of ``item`` in the empty ``directory`` (blobs hard-linked)."""
    (directory / "version").write_text("Directory Transport Version: 1.1\n")
    (directory / "manifest.json").write_bytes(item.manifest)
    for digest, path in item.blobs.items():
        target = directory / digest.split(":", 1)[1]
        try:
            os.link(path, target)
        except OSError:
            target.write_bytes(path.read_bytes())


def _failure(err: ToolFailed, ref: Reference, creds: Credentials) -> VmcError:
    failure = registry_error(err, ref)
    if isinstance(failure, Unauthorized):
        # Docker 20.10's words; not a 401, which makes the docker CLI prompt for a login
        return System("no basic auth credentials" if creds.empty
                      else "unauthorized: authentication required")
    return failure


def _no_answer(response: object) -> Unauthorized:
    return Unauthorized("")


def existing_blobs(digests: tuple[str, ...], ref: Reference, policy: RegistryPolicy,
                   creds: Credentials) -> set[str]:
    """Those of ``digests`` the registry already holds in ``ref``'s repository
    (``HEAD /v2/<path>/blobs/<digest>`` answers 200). Any failure counts as "not
    there": skopeo, which uploads, is the one to report errors."""
    domain = "registry-1.docker.io" if ref.domain == "docker.io" else ref.domain
    for base, ctx in endpoints(domain, policy):
        found: set[str] = set()
        try:
            for digest in digests:
                url = f"{base}/v2/{ref.path}/blobs/{digest}"
                with authorized(url, ctx, creds, "HEAD", _no_answer) as response:
                    if response.status == 200:
                        found.add(digest)
            return found
        except (Unauthorized, Unavailable):
            return found
        except OSError:
            continue
    return set()


def upload(item: Pushable, ref: Reference, policy: RegistryPolicy, creds: Credentials,
           staging: Path, workdir: Path, progress: Progress) -> None:
    """``skopeo copy`` of the staged ``item`` to ``ref`` (a tag), reporting progress.
    Raises Unavailable, NotFound, Forbidden or System (Docker's texts)."""
    ids = dict(zip(item.layers, (short_id(d) for d in item.diff_ids), strict=True))
    for layer in item.layers:
        progress(Event("Preparing", ids[layer]))
    settled = existing_blobs(item.layers, ref, policy, creds)
    for layer in item.layers:
        if layer in settled:
            progress(Event("Layer already exists", ids[layer]))
    argv = ["skopeo", "--insecure-policy", "--tmpdir", str(workdir), "copy",
            "--retry-times", "1", "--preserve-digests",
            *policy.skopeo_args("dest", ref.domain, creds, workdir),
            f"dir:{staging}", f"docker://{ref}"]
    pushing: list[str] = []

    def on_line(line: str) -> None:
        words = line.split()
        log.debug("skopeo: %s", line)
        if (len(words) < 3 or words[:2] != ["Copying", "blob"] or words[2] not in ids
                or words[2] in settled):
            return
        layer = words[2]
        if "skipped:" in words:
            settled.add(layer)
            progress(Event("Layer already exists", ids[layer]))
        elif layer not in pushing:
            pushing.append(layer)
            progress(Event("Pushing", ids[layer]))

    try:
        run_lines(argv, env={"TMPDIR": str(workdir)}, on_line=on_line, idle_s=POLL_S)
    except ToolFailed as err:
        raise _failure(err, ref, creds) from err
    for layer in item.layers:
        if layer not in settled:
            progress(Event("Pushed", ids[layer]))
