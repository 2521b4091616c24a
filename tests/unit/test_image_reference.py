"""Reference parsing against Docker's rules (distribution/reference v0.6)."""

from __future__ import annotations

import pytest

from vmcontainer.errors import InvalidParameter
from vmcontainer.image.reference import (
    id_prefix,
    is_full_id,
    normalize,
    parse_normalized,
    truncate_id,
)

HEX = "a" * 64


@pytest.mark.parametrize(("given", "full", "familiar"), [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("user/img", "docker.io/user/img:latest", "user/img:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("localhost/a", "localhost/a:latest", "localhost/a:latest"),
    ("quay.io/org/app:v1.2_3-rc", "quay.io/org/app:v1.2_3-rc", "quay.io/org/app:v1.2_3-rc"),
    ("Example.com/app", "Example.com/app:latest", "Example.com/app:latest"),
    ("[::1]:5000/app:t", "[::1]:5000/app:t", "[::1]:5000/app:t"),
    ("a__b/c.d-e---f", "docker.io/a__b/c.d-e---f:latest", "a__b/c.d-e---f:latest"),
    (f"name@sha256:{HEX}", f"docker.io/library/name@sha256:{HEX}", f"name@sha256:{HEX}"),
    (f"name:t@sha256:{HEX}", f"docker.io/library/name:t@sha256:{HEX}", f"name:t@sha256:{HEX}"),
])
def test_normalize(given: str, full: str, familiar: str) -> None:
    ref = normalize(given)
    assert str(ref) == full
    assert ref.familiar == familiar


def test_parts_and_familiar_name() -> None:
    ref = normalize("busybox")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (
        "docker.io", "library/busybox", "latest", None)
    assert ref.name == "docker.io/library/busybox"
    assert ref.familiar_name == "busybox"
    assert normalize("docker.io/library/a/b").familiar_name == "library/a/b"
    assert parse_normalized("busybox").tag is None
    assert normalize(f"x@sha256:{HEX}").tag is None
    assert normalize("busybox").with_tag("1").familiar == "busybox:1"


@pytest.mark.parametrize(("given", "message"), [
    ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
    ("user/Img", "invalid reference format: repository name (user/Img) must be lowercase"),
    ("example.com/Foo:t", "invalid reference format: repository name (Foo) must be lowercase"),
    ("", "invalid reference format"),
    ("a..b", "invalid reference format"),
    ("../evil", "invalid reference format"),
    ("a b", "invalid reference format"),
    ("a/", "invalid reference format"),
    ("-a", "invalid reference format"),
    ("a:", "invalid reference format"),
    ("a:-tag", "invalid reference format"),
    ("a:" + "t" * 129, "invalid reference format"),
    ("a$", "invalid reference format"),
    ("x" * 300, "repository name must not be more than 255 characters"),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("a@sha256:abcd", "invalid reference format"),
    ("a@sha256:" + "a" * 63, "invalid checksum digest length"),
    ("a@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("a@sha256:" + "A" * 64, "invalid checksum digest format"),
])
def test_invalid_references_use_dockers_wording(given: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        normalize(given)
    assert str(info.value) == message


def test_name_at_the_length_limit() -> None:
    path = "x" * (255 - len("library/"))
    assert normalize(path).path == "library/" + path
    with pytest.raises(InvalidParameter):
        normalize(path + "x")


def test_id_helpers() -> None:
    assert id_prefix("abc123") == "abc123"
    assert id_prefix("sha256:abc") == "abc"
    assert id_prefix("busybox") is None
    assert id_prefix("a" * 65) is None
    assert is_full_id(HEX) and is_full_id("sha256:" + HEX)
    assert not is_full_id("abc")
    assert truncate_id("sha256:" + "0123456789abcdef" * 4) == "0123456789ab"
