"""How the daemon's network mode is chosen (``--network-mode``, daemon.json
``network-mode``, ``VMCONTAINER_NETWORK``, then bridge as root and user otherwise)
and what bridge mode checks on the host before it changes anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmcontainer.api.daemonconfig import merge
from vmcontainer.config import Settings, network_mode
from vmcontainer.errors import InvalidParameter, Unavailable
from vmcontainer.network import hosttools


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("VMCONTAINER_NETWORK", raising=False)
    return monkeypatch


@pytest.mark.parametrize(("euid", "want"), [(0, "bridge"), (1000, "user")])
def test_default_is_bridge_as_root_and_user_otherwise(no_env: pytest.MonkeyPatch, euid: int,
                                                      want: str) -> None:
    no_env.setattr("os.geteuid", lambda: euid)
    assert network_mode() == want
    assert Settings.from_env().network_driver == want


def test_asked_beats_environment_beats_default(no_env: pytest.MonkeyPatch) -> None:
    no_env.setattr("os.geteuid", lambda: 0)
    no_env.setenv("VMCONTAINER_NETWORK", "user")
    assert network_mode() == "user"
    assert network_mode("bridge") == "bridge"
    no_env.setenv("VMCONTAINER_NETWORK", "nonsense")  # not read when a mode is asked
    assert network_mode("user") == "user"
    assert Settings.from_env("bridge").network_driver == "bridge"


def test_bad_values_say_which_and_what_is_allowed(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidParameter, match=r"^invalid network mode 'slirp': use user or "
                                               r"bridge$"):
        network_mode("slirp")
    no_env.setenv("VMCONTAINER_NETWORK", "host")
    with pytest.raises(InvalidParameter, match=r"'host' \(VMCONTAINER_NETWORK\): use user"):
        network_mode()


def _merge(tmp_path: Path, flags: dict[str, object], file: object = None) -> str:
    path = tmp_path / "daemon.json"
    if file is not None:
        path.write_text(json.dumps(file))
    return merge({"hosts": ["unix:///x.sock"], **flags}, path, False).network_mode


def test_daemon_flag_and_file(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    no_env.setattr("os.geteuid", lambda: 0)
    assert _merge(tmp_path, {}) == "bridge"
    assert _merge(tmp_path, {"network-mode": "user"}) == "user"
    assert _merge(tmp_path, {}, {"network-mode": "user"}) == "user"
    no_env.setenv("VMCONTAINER_NETWORK", "user")
    assert _merge(tmp_path, {}, {"network-mode": "bridge"}) == "bridge"  # file beats env
    with pytest.raises(InvalidParameter, match="specified both as a flag and in the "
                                               "configuration file: network-mode"):
        _merge(tmp_path, {"network-mode": "user"}, {"network-mode": "bridge"})


def test_daemon_file_with_a_bad_mode(tmp_path: Path, no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidParameter, match=r"^unable to configure the daemon with file "
                       rf"{tmp_path}/daemon.json: invalid network mode 'nat': use user or "
                       r"bridge$"):
        _merge(tmp_path, {}, {"network-mode": "nat"})
    with pytest.raises(InvalidParameter, match="'network-mode' must be a str"):
        _merge(tmp_path, {}, {"network-mode": 1})


def test_capability_is_read_from_the_status_file(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000001ffffffffff\n")
    assert hosttools._has_net_admin(status)
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\n")
    assert not hosttools._has_net_admin(status)
    status.write_text(f"CapEff:\t{1 << 12:016x}\n")  # CAP_NET_ADMIN alone
    assert hosttools._has_net_admin(status)


def test_missing_prerequisites_are_listed_in_one_message(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hosttools, "_has_net_admin", lambda: False)
    monkeypatch.setattr(hosttools, "TUN", tmp_path / "tun")
    monkeypatch.setattr(hosttools, "SBIN", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Unavailable) as err:
        hosttools.check_bridge_host()
    assert str(err.value) == (
        "Error initializing network controller: bridge networking needs root (the "
        f"CAP_NET_ADMIN capability), {tmp_path}/tun (the tun driver), nft (install "
        "Debian's nftables), dnsmasq (install Debian's dnsmasq-base); or start the daemon "
        "with --network-mode user")
    with pytest.raises(Unavailable, match=r"^nft not found: install Debian's nftables$"):
        hosttools.tool("nft")


def test_tools_are_found_in_sbin_without_it_on_path(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "nft").write_text("#!/bin/sh\n")
    (sbin / "nft").chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(hosttools, "SBIN", (str(sbin),))
    assert hosttools.tool("nft") == str(sbin / "nft")
    assert hosttools.find_tool("dnsmasq") is None


def test_a_remote_libvirt_host_means_user_networking(tmp_path: Path,
                                                      no_env: pytest.MonkeyPatch) -> None:
    """A VM on another host cannot open a tap on this host's bridge: a remote URI
    makes user mode the default even as root, and an asked bridge mode an error."""
    no_env.setattr("os.geteuid", lambda: 0)
    remote = {"backend": "libvirt", "libvirt-uri": "qemu+ssh://root@h.example/system"}
    assert _merge(tmp_path, remote) == "user"
    assert _merge(tmp_path, {"backend": "libvirt", "libvirt-uri": "qemu:///system"}) == "bridge"
    with pytest.raises(InvalidParameter, match=r"remote libvirt host: use --network-mode user"):
        _merge(tmp_path, {**remote, "network-mode": "bridge"})
    no_env.setenv("VMCONTAINER_NETWORK", "bridge")
    with pytest.raises(InvalidParameter, match=r"needs the VMs on this host"):
        _merge(tmp_path, remote)
