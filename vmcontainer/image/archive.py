"""Read ``docker save`` and OCI archives into a staging directory, through skopeo.

Accepted input (plain, or compressed with gzip/bzip2/xz/zstd as ``docker load``
accepts):

* docker-archive, the ``docker save`` format (Docker image spec v1.2): a tar with
  ``manifest.json`` = ``[{"Config": ..., "RepoTags": [...] | null, "Layers": [...]}]``.
  Image ``N`` is copied with ``skopeo copy docker-archive:FILE:@N dir:STAGE``.
* OCI archive (OCI image-spec ``image-layout.md`` in a tar): ``oci-layout`` +
  ``index.json``. Each ``index.json`` entry is one image; its name comes from the
  ``io.containerd.image.name`` annotation, else ``org.opencontainers.image.ref.name``
  (normalised with Docker's rules; unparsable names load untagged). The layout is
  unpacked (tarfile's ``data`` filter), each entry renamed ``imgN`` in the staged
  ``index.json``, then copied with ``skopeo copy oci:LAYOUT:imgN dir:STAGE``.

skopeo reads the archive and verifies every blob's digest. The ``dir:`` transport
keeps manifest and config bytes unchanged (copying to ``oci:`` would re-serialise a
Docker config and change the image ID); a Docker schema-2 manifest is then
rewritten here as an OCI manifest over the same config and layer blobs.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vmcontainer.image import oci
from vmcontainer.image.errors import InvalidArchive, InvalidLayer, InvalidReference, ToolFailed
from vmcontainer.image.layers import Compression, decompress_file, sniff
from vmcontainer.image.oci import Descriptor
from vmcontainer.image.reference import Reference, normalize
from vmcontainer.image.tools import skopeo_copy

_LAYER_MEDIA = {Compression.NONE: oci.MEDIA_LAYER, Compression.GZIP: oci.MEDIA_LAYER_GZIP,
                Compression.ZSTD: oci.MEDIA_LAYER_ZSTD}


@dataclass(frozen=True)
class StagedImage:
    """One image copied out of an archive, not yet in the store.

    ``manifest``: OCI manifest bytes; ``blobs``: config then layer descriptors, each
    file at ``directory / <hex>``; ``refs``: its tags (empty: untagged).
    """

    directory: Path
    manifest: bytes
    config_digest: str
    blobs: tuple[Descriptor, ...]
    refs: tuple[Reference, ...]

    def blob_file(self, desc: Descriptor) -> Path:
        """Where the staged blob ``desc`` lies (``<directory>/<hex>``)."""
        return self.directory / desc.digest.split(":", 1)[1]


def read_archive(source: Path | BinaryIO, staging: Path, label: str) -> list[StagedImage]:
    """Stage every image of the archive ``source`` under the empty directory ``staging``.

    ``label`` names the input in messages (a file name, or ``stdin``). Raises
    InvalidArchive (an InvalidParameter) for anything that is not a readable
    docker-archive or OCI archive; ToolMissing if skopeo is absent.
    """
    plain = _plain_tar(source, staging, label)
    try:
        with tarfile.open(plain, "r:") as tar:
            names = {m.name.removeprefix("./"): m for m in tar.getmembers()}
            manifest_member = names.get("manifest.json")
            manifest_data = _member_bytes(tar, manifest_member) if manifest_member else None
    except (tarfile.TarError, OSError) as err:
        raise InvalidArchive(f"{label}: not a docker save or OCI archive: {err}") from err
    if manifest_data is not None:
        return _stage_docker(plain, staging, label, manifest_data)
    if "oci-layout" in names and "index.json" in names:
        return _stage_oci(plain, staging, label)
    raise InvalidArchive(f"{label}: not a docker save or OCI archive "
                         "(it has neither manifest.json nor oci-layout)")


def missing_file(path: Path) -> str:
    """Docker's wording for an input that is not there (or is not a file)."""
    if path.exists():
        return f"{path}: not a regular file"
    return f"open {path}: no such file or directory"


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if not member.isfile():  # a link could point anywhere, even at the host's files
        raise InvalidArchive(f"{member.name} is not a regular file")
    f = tar.extractfile(member)
    if f is None:
        raise InvalidArchive(f"{member.name} is not a regular file")
    return f.read()


def _plain_tar(source: Path | BinaryIO, staging: Path, label: str) -> Path:
    """An uncompressed copy or link of the input inside ``staging`` (skopeo splits
    transport arguments on ':', so the path it sees must be ours)."""
    spooled = staging / "input"
    if isinstance(source, Path):
        if not source.is_file():
            raise InvalidArchive(missing_file(source))
        spooled.symlink_to(source.resolve())
    else:
        with spooled.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    kind = sniff(spooled)
    if kind is Compression.NONE:
        return spooled
    plain = staging / "archive.tar"
    try:
        decompress_file(spooled, plain, kind)
    except InvalidLayer as err:
        raise InvalidArchive(f"{label}: {err}") from err
    return plain


def _stage_docker(plain: Path, staging: Path, label: str, data: bytes) -> list[StagedImage]:
    try:
        entries = json.loads(data)
    except ValueError as err:
        raise InvalidArchive(f"{label}: manifest.json is not JSON: {err}") from err
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidArchive(f"{label}: manifest.json is not a list of images")
    tag_lists = [_repo_tags(e.get("RepoTags"), label) for e in entries]
    staged = []
    for i, refs in enumerate(tag_lists):
        dest = staging / f"img{i}"
        _copy(f"docker-archive:{plain}:@{i}", dest, staging, f"{label}: image {i}")
        staged.append(_read_dir(dest, refs, f"{label}: image {i}"))
    return staged


def _repo_tags(value: object, label: str) -> tuple[Reference, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidArchive(f"{label}: RepoTags must be a list of strings")
    refs = []
    for tag in value:
        try:
            ref = normalize(tag)
        except InvalidReference as err:
            raise InvalidArchive(f'{label}: invalid tag "{tag}": {err}') from err
        if ref.tag is None or ref.digest is not None:
            raise InvalidArchive(f'{label}: invalid tag "{tag}"')
        refs.append(ref)
    return tuple(refs)


def _stage_oci(plain: Path, staging: Path, label: str) -> list[StagedImage]:
    layout = staging / "layout"
    try:
        with tarfile.open(plain, "r:") as tar:
            tar.extractall(layout, filter="data")
        index = json.loads((layout / "index.json").read_bytes())
        manifests = [Descriptor.from_json(d) for d in index.get("manifests") or []]
    except (tarfile.TarError, OSError, ValueError, AttributeError) as err:
        raise InvalidArchive(f"{label}: unreadable OCI layout: {err}") from err
    if not manifests:
        raise InvalidArchive(f"{label}: the OCI archive holds no image")
    renamed = [Descriptor(d.media_type, d.digest, d.size, {oci.ANNOTATION_REF_NAME: f"img{i}"})
               for i, d in enumerate(manifests)]
    (layout / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "manifests": [d.to_json() for d in renamed]}))
    staged = []
    for i, desc in enumerate(manifests):
        dest = staging / f"img{i}"
        _copy(f"oci:{layout}:img{i}", dest, staging, f"{label}: image {i}")
        staged.append(_read_dir(dest, _oci_refs(desc), f"{label}: image {i}"))
    return staged


def _oci_refs(desc: Descriptor) -> tuple[Reference, ...]:
    name = desc.annotations.get(oci.ANNOTATION_CONTAINERD_NAME) or desc.ref_name
    if not name:
        return ()
    try:
        ref = normalize(name)
    except InvalidReference:
        return ()
    return (ref,) if ref.tag is not None and ref.digest is None else ()


def _copy(source: str, dest: Path, staging: Path, label: str) -> None:
    try:
        skopeo_copy(source, f"dir:{dest}", staging)
    except ToolFailed as err:
        detail = str(err).split(": ", 1)[-1]
        raise InvalidArchive(f"{label}: {detail}") from err


def _read_dir(directory: Path, refs: tuple[Reference, ...], label: str) -> StagedImage:
    """Turn skopeo's ``dir:`` output into a StagedImage with an OCI manifest."""
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes())
        config = Descriptor.from_json(manifest["config"])
        layers = [Descriptor.from_json(d) for d in manifest["layers"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidArchive(f"{label}: unreadable manifest: {err}") from err
    media_type = manifest.get("mediaType") or (
        oci.MEDIA_MANIFEST if config.media_type == oci.MEDIA_CONFIG else "")
    if media_type == oci.DOCKER_MANIFEST:
        layers = [_oci_layer(directory, d, label) for d in layers]
        manifest_bytes = oci.canonical_json({
            "schemaVersion": 2, "mediaType": oci.MEDIA_MANIFEST,
            "config": Descriptor(oci.MEDIA_CONFIG, config.digest, config.size).to_json(),
            "layers": [d.to_json() for d in layers]})
    elif media_type == oci.MEDIA_MANIFEST:
        manifest_bytes = (directory / "manifest.json").read_bytes()
    else:
        raise InvalidArchive(f"{label}: unsupported manifest type {media_type!r}")
    _check_config(directory / config.digest.split(":", 1)[1], label)
    return StagedImage(directory, manifest_bytes, config.digest, (config, *layers), refs)


def _oci_layer(directory: Path, desc: Descriptor, label: str) -> Descriptor:
    """The OCI descriptor of a Docker layer; the compression is read from the blob,
    since docker-archive layers are plain tars labelled ``tar.gzip``."""
    if "foreign" in desc.media_type:
        raise InvalidArchive(f"{label}: foreign (Windows) layers are not supported")
    kind = sniff(directory / desc.digest.split(":", 1)[1])
    media = _LAYER_MEDIA.get(kind)
    if media is None:
        raise InvalidArchive(f"{label}: layer {desc.digest} is {kind.name.lower()}-compressed")
    return Descriptor(media, desc.digest, desc.size)


def _check_config(path: Path, label: str) -> None:
    try:
        config = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise InvalidArchive(f"{label}: unreadable image config: {err}") from err
    if not isinstance(config, dict):
        raise InvalidArchive(f"{label}: the image config is not a JSON object")
    os_name = config.get("os", "linux")
    if os_name != "linux":
        raise InvalidArchive(f'{label}: image operating system "{os_name}" cannot be used '
                             "on this platform")
