"""Image routes over the local store: list, inspect, tag, delete, load, save, and
``/images/create`` (pull from a registry, or import from a tarball).

The store's methods block (skopeo, disk I/O), so they run in worker threads.
Image names may contain slashes (``localhost:5000/a/b``): the routes match the
name greedily up to the last path segment.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route, image_summary, request_version
from vmcontainer.api.imagesave import save
from vmcontainer.api.pullstream import error_doc, run_with_progress
from vmcontainer.api.registryauth import HEADER, credentials
from vmcontainer.api.responses import dumps, json_response
from vmcontainer.api.streams import start_stream
from vmcontainer.errors import ImageNotFound, InvalidParameter
from vmcontainer.image.model import Image
from vmcontainer.image.pull import Progress
from vmcontainer.image.reference import normalize, parse_normalized
from vmcontainer.image.staging import staging_dir
from vmcontainer.image.store import PushResult

IMAGE_FILTERS = ("dangling", "label", "reference", "before", "since", "until")


def _name(request: web.Request) -> str:
    return request.match_info["name"]


def _created(image: Image) -> int:
    head = image.created.rstrip("Z").partition(".")[0]
    try:
        return int(datetime.fromisoformat(head + "+00:00").timestamp())
    except ValueError:
        return 0


def _summary(image: Image) -> dict[str, Any]:
    run = image.config.get("config")
    labels = run.get("Labels") if isinstance(run, dict) else None
    return {"Containers": -1, "Created": _created(image), "Id": image.id,
            "Labels": labels or {}, "ParentId": "", "RepoDigests": list(image.repo_digests),
            "RepoTags": list(image.repo_tags), "SharedSize": -1, "Size": image.size,
            "VirtualSize": image.size}


def _keep(image: Image, filters: dict[str, list[str]],
          bounds: dict[str, float] | None = None) -> bool:
    """Whether ``image`` passes ``filters``; ``bounds`` holds the creation times
    that ``before``/``since`` (images) and ``until`` (a timestamp) resolved to."""
    for key, values in filters.items():
        if key not in IMAGE_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        if key == "dangling" and values:
            if values[0] not in ("true", "false", "1", "0"):
                raise InvalidParameter(f"invalid filter 'dangling={values[0]}'")
            if (values[0] in ("true", "1")) != (not image.repo_tags):
                return False
        elif key == "reference" and values:
            names = [t for tag in image.repo_tags for t in (tag, tag.rpartition(":")[0])]
            if not any(fnmatch.fnmatchcase(n, v) for v in values for n in names):
                return False
        elif key in ("before", "until") and bounds and key in bounds:
            if not _created(image) < bounds[key]:
                return False
        elif key == "since" and bounds and key in bounds:
            if not _created(image) > bounds[key]:
                return False
        elif key == "label" and values:
            s = _summary(image)["Labels"]
            for v in values:
                k, eq, want = v.partition("=")
                if k not in s or (eq and s[k] != want):
                    return False
    return True


def _bounds(filters: dict[str, list[str]], images: list[Image]) -> dict[str, float]:
    """``before``/``since``: the creation time of the image named (404 if none);
    ``until``: a Unix or RFC 3339 time (Docker's filter values)."""
    from vmcontainer.engine.humanize import parse_time

    out: dict[str, float] = {}
    for key in ("before", "since"):
        for value in filters.get(key, [])[:1]:
            match = [i for i in images if i.id == value or i.id.startswith("sha256:" + value)
                     or value in i.repo_tags or f"{value}:latest" in i.repo_tags]
            if not match:
                raise ImageNotFound(value)
            out[key] = _created(match[0])
    for value in filters.get("until", [])[:1]:
        try:
            out["until"] = float(value)
        except ValueError:
            try:
                out["until"] = parse_time(value).timestamp()
            except ValueError:
                raise InvalidParameter(f"invalid filter 'until={value[:64]}'") from None
    return out


async def list_(request: web.Request) -> web.Response:
    filters = params.filters(request)
    images = await asyncio.to_thread(engine(request).ctx.images.list)
    bounds = _bounds(filters, images)
    chosen = sorted((i for i in images if _keep(i, filters, bounds)), key=_created,
                    reverse=True)
    version = request_version(request)
    return json_response([image_summary(_summary(i), version) for i in chosen])


async def inspect(request: web.Request) -> web.Response:
    doc = await asyncio.to_thread(engine(request).ctx.images.inspect, _name(request))
    return json_response(doc)


async def history(request: web.Request) -> web.Response:
    """Engine API ImageHistory."""
    rows = await asyncio.to_thread(engine(request).ctx.images.history, _name(request))
    return json_response(rows)


async def prune(request: web.Request) -> web.Response:
    """Engine API ImagePrune: filters ``dangling`` (``false``: every unused image),
    ``until``, ``label``."""
    from vmcontainer.image.prune import prune as prune_images

    filters = params.filters(request)
    for key in filters:
        if key not in ("dangling", "until", "label", "label!"):
            raise InvalidParameter(f"invalid filter '{key}'")
    dangling = (filters.get("dangling") or ["true"])[0]
    if dangling not in ("true", "false", "1", "0"):
        raise InvalidParameter(f"invalid filter 'dangling={dangling}'")
    eng = engine(request)
    until = _bounds({"until": filters.get("until", [])}, []).get("until", 0.0)
    labels = filters.get("label", []) + ["!" + v for v in filters.get("label!", [])]
    containers = eng.list(all=True)

    def users(image_id: str) -> dict[str, bool]:
        return {c["Id"]: c["State"] == "running" for c in containers
                if c.get("ImageID") == image_id}

    result = await asyncio.to_thread(prune_images, eng.ctx.images, users,
                                     all=dangling in ("false", "0"), until=until,
                                     labels=labels)
    return json_response(result)


async def tag(request: web.Request) -> web.Response:
    repo, tag_ = params.text(request, "repo"), params.text(request, "tag")
    if not repo:
        raise InvalidParameter("invalid reference format: repository name must have at "
                               "least one component")
    target = f"{repo}:{tag_}" if tag_ else repo
    await asyncio.to_thread(engine(request).ctx.images.tag, _name(request), target)
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    eng = engine(request)
    containers = eng.list(all=True)

    def users(image_id: str) -> dict[str, bool]:
        return {c["Id"]: c["State"] == "running" for c in containers
                if c.get("ImageID") == image_id}

    records = await asyncio.to_thread(eng.ctx.images.remove, _name(request),
                                      params.flag(request, "force"), users)
    return json_response(records)


async def _receive(request: web.Request, path: Path) -> None:
    """The request body (chunked or not) into ``path``."""
    with open(path, "wb") as fh:
        async for chunk in request.content.iter_chunked(1 << 20):
            await asyncio.to_thread(fh.write, chunk)


async def _stream_lines(request: web.Request, docs: Sequence[Mapping[str, object]]
                        ) -> web.StreamResponse:
    resp = await start_stream(request, "application/json")
    for doc in docs:
        await resp.write(dumps(doc))
    await resp.write_eof()
    return resp


async def load(request: web.Request) -> web.StreamResponse:
    """``docker load``: Docker's JSON stream, ``{"stream": "Loaded image: ...\\n"}``."""
    store = engine(request).ctx.images
    with staging_dir(store.tmp_dir, "api-load-") as staging:
        archive = staging / "archive"
        await _receive(request, archive)
        try:
            if archive.stat().st_size == 0:
                raise InvalidParameter("requested load from stdin, but stdin is empty")
            lines = await asyncio.to_thread(store.load, archive)
        except InvalidParameter as err:
            # Docker answers 200 and streams the error (docker-py: ImageLoadError)
            return await _stream_lines(request, [error_doc(str(err))])
    return await _stream_lines(request, [{"stream": line + "\n"} for line in lines])


async def create(request: web.Request) -> web.StreamResponse:
    """``docker pull`` (``fromImage``, ``tag``; Engine API v1.45 ImageCreate) and
    ``docker import`` (``fromSrc=-``). A pull streams Docker's progress JSON (see
    :mod:`vmcontainer.api.pullstream`), ending with the ``Digest:`` and ``Status:``
    lines; a missing tag is a 404 with Docker's ``manifest for ... not found``."""
    source = params.text(request, "fromSrc")
    if source:
        return await _import(request, source)
    ref_text = params.text(request, "fromImage")
    if not ref_text:
        raise InvalidParameter("fromImage or fromSrc is required")
    tag_ = params.text(request, "tag")
    if tag_ and ":" not in ref_text.rpartition("/")[2] and "@" not in ref_text:
        ref_text = f"{ref_text}@{tag_}" if tag_.startswith("sha256:") else f"{ref_text}:{tag_}"
    platform = params.text(request, "platform")
    if platform and platform not in ("linux", "linux/amd64", "amd64"):
        raise InvalidParameter(f"platform {platform} is not supported: vmcontainer runs "
                               "linux/amd64 images")
    ref = normalize(ref_text)
    store = engine(request).ctx.images
    creds = credentials(request)
    resp, result = await run_with_progress(
        request, lambda progress: store.pull(str(ref), creds, progress))
    await resp.write(dumps({"status": f"Digest: {result.repo_digest}"}))
    state = "Downloaded newer image for" if result.updated else "Image is up to date for"
    await resp.write(dumps({"status": f"Status: {state} {ref.familiar}"}))
    await resp.write_eof()
    return resp


async def push(request: web.Request) -> web.StreamResponse:
    """``docker push`` (Engine API v1.45 ImagePush): ``tag`` (empty: every tag of the
    repository). ``X-Registry-Auth`` is required as in Docker (400 ``Bad parameters
    and missing X-Registry-Auth: EOF`` without it; an undecodable one is anonymous).
    Streams Docker's progress JSON, ending per tag with ``TAG: digest: sha256:… size:
    N`` and the ``aux`` object ``{"Tag","Digest","Size"}``; a failure after the
    first line is an ``errorDetail`` line."""
    if HEADER not in request.headers:
        raise InvalidParameter("Bad parameters and missing X-Registry-Auth: EOF")
    creds = credentials(request)
    name, tag_ = _name(request), params.text(request, "tag")
    base = parse_normalized(name)
    if base.digest is not None or (base.tag is not None and tag_):
        raise InvalidParameter(f"invalid reference format: {name[:300]}")
    store = engine(request).ctx.images
    if tag_:
        targets = [f"{base.name}:{tag_}"]
    elif base.tag is not None:
        targets = [str(base)]
    else:
        images = await asyncio.to_thread(store.list)
        targets = sorted(str(normalize(t)) for i in images for t in i.repo_tags
                         if normalize(t).name == base.name) or [str(base)]
    resp: web.StreamResponse | None = None
    for target in targets:
        def work(progress: Progress, target: str = target) -> PushResult:
            return store.push(target, creds, progress)

        resp, result = await run_with_progress(request, work, resp)
        await resp.write(dumps({"status": f"{result.tag}: digest: {result.digest} size: "
                                          f"{result.size}"}))
        await resp.write(dumps({"progressDetail": {}, "aux": {
            "Tag": result.tag, "Digest": result.digest, "Size": result.size}}))
    assert resp is not None
    await resp.write_eof()
    return resp


async def _import(request: web.Request, source: str) -> web.StreamResponse:
    if source != "-":
        raise InvalidParameter("importing from a URL is not supported by vmcontainer yet")
    from vmcontainer.image.commit import apply_changes

    changes = apply_changes({}, request.query.getall("changes", [])) or None
    repo, tag_ = params.text(request, "repo"), params.text(request, "tag")
    reference = (f"{repo}:{tag_}" if tag_ else repo) or None
    store = engine(request).ctx.images
    with staging_dir(store.tmp_dir, "api-import-") as staging:
        tarball = staging / "rootfs.tar"
        await _receive(request, tarball)
        image_id = await asyncio.to_thread(store.import_rootfs, tarball, reference, changes,
                                           params.text(request, "message"))
    return await _stream_lines(request, [{"status": image_id}])


async def get(request: web.Request) -> web.StreamResponse:
    """``docker save``: ``/images/{name}/get`` or ``/images/get?names=a&names=b``."""
    names = [_name(request)] if "name" in request.match_info else \
        request.query.getall("names", [])
    return await save(request, engine(request).ctx.images, names)


def routes() -> list[Route]:
    return [
        ("GET", "/images/json", list_),
        ("POST", "/images/load", load),
        ("POST", "/images/create", create),
        ("GET", "/images/get", get),
        ("POST", "/images/prune", prune),
        ("GET", "/images/{name:.+}/json", inspect),
        ("GET", "/images/{name:.+}/history", history),
        ("GET", "/images/{name:.+}/get", get),
        ("POST", "/images/{name:.+}/tag", tag),
        ("POST", "/images/{name:.+}/push", push),
        ("DELETE", "/images/{name:.+}", remove),
    ]
