"""RegistryPolicy: which registries are insecure, mirror validation, the
registries.conf handed to skopeo (pure logic; names resolved only when not IPs)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from vmcontainer.errors import InvalidParameter
from vmcontainer.image.registry import RegistryPolicy, validate_mirror


@pytest.mark.parametrize("domain, verify", [
    ("127.0.0.1:5000", False), ("[::1]:5000", False), ("localhost:5000", False),
    ("10.1.2.3:5000", False), ("192.0.2.1", True), ("docker.io", True),
    ("myreg:5000", False), ("192.0.2.2:5000", True),
])
def test_tls_verify(domain: str, verify: bool) -> None:
    policy = RegistryPolicy.from_config(["10.0.0.0/8", "myreg:5000"])
    assert policy.tls_verify(domain) is verify


@pytest.mark.parametrize("url, message", [
    ("ftp://x", 'invalid mirror: unsupported scheme "ftp" in "ftp://x"'),
    ("mirror:5000", 'invalid mirror: unsupported scheme "mirror" in "mirror:5000"'),
    ("http://m/v2", 'invalid mirror: path, query, or fragment at end of the URI "http://m/v2"'),
    ("http://m/?q", 'invalid mirror: path, query, or fragment at end of the URI "http://m/?q"'),
    ("https://u:p@m", 'invalid mirror: username/password not allowed in URI "https://u:p@m"'),
    ("http://", 'invalid mirror: "http://" is not a valid URI'),
])
def test_bad_mirrors(url: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        RegistryPolicy.from_config([], mirrors=[url])
    assert str(err.value) == message


def test_mirrors_in_dockers_form_and_registries_conf(tmp_path: Path) -> None:
    assert validate_mirror("http://127.0.0.1:5000") == "http://127.0.0.1:5000/"
    policy = RegistryPolicy.from_config(
        [], mirrors=["http://127.0.0.1:5000/", "https://192.0.2.7:443"])
    assert policy.mirrors == ("http://127.0.0.1:5000/", "https://192.0.2.7:443/")
    conf = policy.registries_conf(tmp_path)
    assert conf is not None
    doc = tomllib.loads(conf.read_text())
    assert doc["registry"] == [{"prefix": "docker.io", "location": "docker.io", "mirror": [
        {"location": "127.0.0.1:5000", "insecure": True},
        {"location": "192.0.2.7:443", "insecure": False}]}]
    assert RegistryPolicy().registries_conf(tmp_path / "none") is None
