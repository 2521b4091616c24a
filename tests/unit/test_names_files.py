"""/etc/hosts and /etc/resolv.conf of a container."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmcontainer.engine.names_files import (
    check_dns,
    check_extra_hosts,
    hosts_text,
    resolv_conf_text,
)
from vmcontainer.errors import InvalidParameter


def test_hosts_with_extra_hosts() -> None:
    text = hosts_text("c1", ["db:10.0.0.5", "v6:[::2]"])
    assert "10.0.0.5\tdb\n::2\tv6\n127.0.1.1\tc1\n" in text
    assert text.startswith("127.0.0.1\tlocalhost\n")


@pytest.mark.parametrize("bad", ["nocolon", ":1.2.3.4", "db:", "db:notanip", "gw:host-gateway"])
def test_bad_extra_hosts(bad: str) -> None:
    with pytest.raises(InvalidParameter):
        check_extra_hosts([bad])


def test_resolv_conf(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions ndots:2\n")
    assert resolv_conf_text(host_file=host) == \
        "nameserver 10.1.1.1\nsearch corp\noptions ndots:2\n"
    assert resolv_conf_text(["9.9.9.9"], ["a.test"], ["timeout:1"], host) == \
        "nameserver 9.9.9.9\nsearch a.test\noptions timeout:1\n"
    host.write_text("nameserver 127.0.0.53\n")
    assert resolv_conf_text(host_file=host) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    with pytest.raises(InvalidParameter, match="is not an ip address"):
        check_dns(["dns.example"])
