"""``docker save`` over the API: one image (under one or more of its names) as a
docker-archive, streamed back as ``application/x-tar``.

The archive is written by skopeo, which reads the store's OCI layout directly —
``skopeo copy oci:<store>/oci:<full reference> docker-archive:<tmp>:<familiar>``,
``--additional-tag`` for further names — under the store's shared lock so that an
``rmi`` cannot take blobs away meanwhile, into a staging directory of the store
(same filesystem, swept if the daemon dies). The image ID is kept: skopeo copies
the config blob unchanged. Not yet: several different images in one archive, and
images without any tag (the layout names images by their tags).

This belongs in the image room as ``ImageStore.save``; it lives here until then.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from vmcontainer.api.streams import start_stream
from vmcontainer.errors import InvalidParameter
from vmcontainer.image.model import Image
from vmcontainer.image.reference import normalize
from vmcontainer.image.staging import staging_dir
from vmcontainer.image.store import ImageStore
from vmcontainer.image.tools import run

CHUNK = 1 << 20


def plan(store: ImageStore, names: list[str]) -> tuple[str, list[str]]:
    """(source reference in the layout, the archive's tags) for ``names``. Blocking."""
    if not names:
        raise InvalidParameter("no image named: give at least one image to save")
    images: dict[str, Image] = {}
    tags: list[str] = []
    for name in names:
        image = store.resolve(name)
        images[image.id] = image
        try:
            familiar = normalize(name).familiar
        except InvalidParameter:  # an ID
            continue
        if familiar in image.repo_tags and familiar not in tags:
            tags.append(familiar)
    if len(images) > 1:
        raise InvalidParameter("saving several different images in one archive is not "
                               "supported by vmcontainer yet; save them one by one")
    image = next(iter(images.values()))
    source_tags = tags or list(image.repo_tags)
    if not source_tags:
        raise InvalidParameter(f"saving an image without a tag ({image.id[:19]}) is not "
                               "supported by vmcontainer yet; tag it first")
    return str(normalize(source_tags[0])), tags


def write_archive(store: ImageStore, names: list[str], dest: Path) -> None:
    """Write the docker-archive of ``names`` to ``dest``. Blocking."""
    source, tags = plan(store, names)
    target = f"docker-archive:{dest}" + (f":{tags[0]}" if tags else "")
    argv = ["skopeo", "--insecure-policy", "--tmpdir", str(dest.parent), "copy", "--quiet"]
    for extra in tags[1:]:
        argv += ["--additional-tag", extra]
    with store.layout.locked(shared=True):
        run([*argv, f"oci:{store.layout.root}:{source}", target],
            env={"TMPDIR": str(dest.parent)})


async def save(request: web.Request, store: ImageStore, names: list[str]) -> web.StreamResponse:
    with staging_dir(store.tmp_dir, "api-save-") as staging:
        archive = staging / "image.tar"
        await asyncio.to_thread(write_archive, store, names, archive)
        resp = await start_stream(request, "application/x-tar")
        with open(archive, "rb") as fh:
            while data := await asyncio.to_thread(fh.read, CHUNK):
                await resp.write(data)
        await resp.write_eof()
    return resp
