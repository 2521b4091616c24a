"""A real distro userland (Debian bookworm minbase from mmdebstrap) in a VM."""

from __future__ import annotations

import pytest
from conftest import Vmc

pytestmark = pytest.mark.vm


def test_debian_userland(vmc: Vmc, debian: str) -> None:
    r = vmc("run", "--rm", "-u", "nobody", "-w", "/tmp", "-e", "FOO=bar", debian, "sh", "-c",
            "cat /etc/debian_version; id; pwd; env; apt-get --version | head -n1")
    assert r.returncode == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("12.")
    assert lines[1] == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    assert lines[2] == "/tmp"
    assert "FOO=bar" in lines and "DEBIAN_IMAGE=yes" in lines
    assert lines[-1].startswith("apt ")
