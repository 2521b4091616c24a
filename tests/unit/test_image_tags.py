"""Lookups, ``docker tag`` and ``docker rmi`` semantics on a real store (images made
with ``import_rootfs``, which needs no skopeo)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from imagebuild import Entry, layer_tar

from vmcontainer.errors import Conflict, ImageNotFound, InvalidParameter
from vmcontainer.image import ImageStore
from vmcontainer.image.delete import chain_ids
from vmcontainer.image.reference import truncate_id


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


def make(store: ImageStore, ref: str | None, content: bytes = b"x") -> str:
    return store.import_rootfs(io.BytesIO(layer_tar([Entry("f", data=content)])), ref)


def test_resolve_by_name_id_and_prefix(store: ImageStore) -> None:
    image_id = make(store, "busybox")
    hex_id = image_id.split(":")[1]
    for text in ("busybox", "busybox:latest", "docker.io/library/busybox:latest",
                 "index.docker.io/busybox", image_id, hex_id, hex_id[:12], hex_id[:1],
                 "sha256:" + hex_id[:5]):
        assert store.resolve(text).id == image_id, text
    assert store.resolve("busybox").repo_tags == ("busybox:latest",)


def test_not_found_wording(store: ImageStore) -> None:
    make(store, "busybox")
    cases = {"nosuch": "No such image: nosuch:latest",
             "busybox:1.0": "No such image: busybox:1.0",
             "docker.io/library/nosuch": "No such image: nosuch:latest",
             "user/img:t": "No such image: user/img:t",
             "sha256:1234": "No such image: sha256:1234",
             "0" * 64: "No such image: sha256:" + "0" * 64,
             "foo@sha256:" + "1" * 64: "No such image: foo@sha256:" + "1" * 64}
    for text, message in cases.items():
        with pytest.raises(ImageNotFound) as info:
            store.resolve(text)
        assert str(info.value) == message
    with pytest.raises(InvalidParameter, match=r"name \(library/Busybox\) must be lowercase"):
        store.resolve("Busybox")


def test_ambiguous_prefix_is_not_found(store: ImageStore) -> None:
    ids = [make(store, None, bytes([i]) * 10) for i in range(40)]
    hex_ids = [i.split(":")[1] for i in ids]
    firsts = [h[0] for h in hex_ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(ImageNotFound):
        store.resolve(shared)
    # the shortest prefix of one ID that no other ID shares (IDs depend on the
    # creation time: which prefix is unique differs between runs)
    target, others = hex_ids[0], hex_ids[1:]
    n = next(n for n in range(1, 65) if not any(o.startswith(target[:n]) for o in others))
    assert store.resolve(target[:n]).id == "sha256:" + target


def test_name_wins_over_id_prefix(store: ImageStore) -> None:
    first = make(store, None, b"1")
    prefix = first.split(":")[1][:6]
    second = make(store, prefix, b"2")
    assert store.resolve(prefix).id == second
    assert store.resolve("sha256:" + prefix).id == first


def test_tag_and_move(store: ImageStore) -> None:
    a = make(store, "a", b"a")
    b = make(store, "b", b"b")
    store.tag("a", "other/name:1")
    store.tag(a[:19], "plain")
    assert store.resolve("a").repo_tags == ("a:latest", "other/name:1", "plain:latest")
    store.tag("b", "plain")
    assert store.resolve("plain").id == b
    assert store.resolve(a).repo_tags == ("a:latest", "other/name:1")
    with pytest.raises(ImageNotFound, match="No such image: nosuch:latest"):
        store.tag("nosuch", "x")
    with pytest.raises(InvalidParameter, match="refusing to create a tag with a digest reference"):
        store.tag("a", "x@sha256:" + "0" * 64)
    with pytest.raises(InvalidParameter, match="ambiguous tag using digest algorithm"):
        store.tag("a", "sha256:abc")
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        store.tag("a", "x..y")


def test_moved_tag_leaves_dangling_image(store: ImageStore) -> None:
    old = make(store, "app", b"old")
    new = make(store, "app", b"new")
    assert store.resolve("app").id == new
    assert store.resolve(old).repo_tags == ()
    assert {i.id for i in store.list()} == {old, new}


def test_remove_untags_while_other_tags_remain(store: ImageStore) -> None:
    image_id = make(store, "busybox")
    store.tag("busybox", "mybox:1")
    assert store.remove("busybox") == [{"Untagged": "busybox:latest"}]
    assert store.resolve(image_id).repo_tags == ("mybox:1",)
    diff_id = store.resolve(image_id).diff_ids[0]
    assert store.remove("mybox:1") == [{"Untagged": "mybox:1"}, {"Deleted": image_id},
                                       {"Deleted": diff_id}]
    assert store.list() == []
    assert sorted(p.name for p in store.layout.blobs.iterdir()) == []


def test_remove_by_id(store: ImageStore) -> None:
    single = make(store, "one", b"1")
    assert store.remove(single[7:19])[:2] == [{"Untagged": "one:latest"}, {"Deleted": single}]
    multi = make(store, "two", b"2")
    store.tag("two", "deux")
    with pytest.raises(Conflict) as info:
        store.remove(multi)
    assert str(info.value) == (f"conflict: unable to delete {truncate_id(multi)} (must be forced)"
                               " - image is referenced in multiple repositories")
    records = store.remove(multi, force=True)
    assert records[:3] == [{"Untagged": "deux:latest"}, {"Untagged": "two:latest"},
                           {"Deleted": multi}]
    dangling = make(store, None, b"3")
    assert store.remove(dangling)[0] == {"Deleted": dangling}


def test_remove_keeps_shared_layers(store: ImageStore) -> None:
    a = make(store, "a", b"same")
    b = make(store, "b", b"same")
    layer = store.resolve(a).layers[0]
    assert store.remove("a") == [{"Untagged": "a:latest"}, {"Deleted": a}]  # layer still used
    assert store.layout.has_blob(layer)
    assert store.remove("b")[-1] == {"Deleted": layer}
    assert not store.layout.has_blob(layer)
    assert b not in {i.id for i in store.list()}


def test_remove_with_containers(store: ImageStore) -> None:
    image_id = make(store, "app")
    cid = "c0ffee" + "0" * 58
    running = {cid: True}
    stopped = {cid: False}
    with pytest.raises(Conflict) as info:
        store.remove("app", users=lambda _id: stopped)
    assert str(info.value) == (
        f'conflict: unable to remove repository reference "app" (must force) - container '
        f"{cid[:12]} is using its referenced image {truncate_id(image_id)}")
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running "
                                       f"container {cid[:12]}"):
        store.remove(image_id, force=True, users=lambda _id: running)
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped"):
        store.remove(image_id, users=lambda _id: stopped)
    # Forced by name with a running container: only the tag goes.
    assert store.remove("app", force=True, users=lambda _id: running) == [
        {"Untagged": "app:latest"}]
    assert store.resolve(image_id).repo_tags == ()
    # Forced by ID with a stopped container: deleted.
    records = store.remove(image_id, force=True, users=lambda _id: stopped)
    assert {"Deleted": image_id} in records


def test_remove_not_found(store: ImageStore) -> None:
    with pytest.raises(ImageNotFound, match="No such image: nosuch:latest"):
        store.remove("nosuch")


def test_chain_ids() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    chains = chain_ids([a, b])
    assert chains[0] == a
    assert chains[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def test_store_survives_reopen(store: ImageStore, tmp_path: Path) -> None:
    image_id = make(store, "persist")
    again = ImageStore(tmp_path / "image")
    assert again.resolve("persist").id == image_id
    assert (tmp_path / "image" / "oci" / "oci-layout").read_text() == \
        '{"imageLayoutVersion":"1.0.0"}'


def test_inspect_shape(store: ImageStore) -> None:
    image_id = store.import_rootfs(io.BytesIO(layer_tar([Entry("f", data=b"x")])), "app:1",
                                   {"Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}})
    doc = store.inspect("app:1")
    assert doc["Id"] == image_id and doc["RepoTags"] == ["app:1"] and doc["RepoDigests"] == []
    assert doc["Comment"] == "Imported from -" and doc["Os"] == "linux"
    assert doc["Architecture"] == "amd64"
    config = doc["Config"]
    assert list(config)[:6] == ["Hostname", "Domainname", "User", "AttachStdin",
                                "AttachStdout", "AttachStderr"]
    assert config["Cmd"] == ["sh"] and config["Entrypoint"] is None and config["Env"] is None
    assert config["ExposedPorts"] == {"80/tcp": {}} and "Healthcheck" not in config
    assert doc["ContainerConfig"]["Cmd"] is None
    assert doc["RootFS"] == {"Type": "layers", "Layers": list(store.resolve(image_id).diff_ids)}
    assert doc["Size"] == doc["VirtualSize"] == store.resolve(image_id).size
    assert doc["GraphDriver"] == {"Name": "vmcontainer", "Data": {}}
    with pytest.raises(ImageNotFound):
        store.inspect("nosuch")


def test_resolve_by_manifest_digest(store: ImageStore) -> None:
    image_id = make(store, "busybox")
    digest = store.resolve(image_id).manifest_digest
    assert store.resolve(f"busybox@{digest}").id == image_id
    assert store.resolve(f"docker.io/library/busybox:latest@{digest}").id == image_id
    with pytest.raises(ImageNotFound, match=f"No such image: other@{digest}"):
        store.resolve(f"other@{digest}")


def test_a_damaged_image_does_not_break_the_store(store: ImageStore) -> None:
    broken = make(store, "broken", b"1")
    ok = make(store, "ok", b"2")
    store.layout.blob_path(store.resolve(broken).manifest_digest).unlink()
    fresh = ImageStore(store.root)  # the first object caches the manifest it read
    assert [i.id for i in fresh.list()] == [ok]
    with pytest.raises(ImageNotFound):
        fresh.resolve("broken")
    other = make(fresh, "other", b"3")
    assert fresh.resolve("other").id == other
