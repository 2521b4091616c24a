"""Bridge-network logic without the host: IPAM, the nftables script of a network,
the network records, endpoint configs of a create body, MACs and tap names."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from vmcontainer.api.createnet import endpoints_config
from vmcontainer.errors import Conflict, InvalidParameter, Unavailable
from vmcontainer.network import ipam, nat, options
from vmcontainer.network.bridge import mac_for, tap_name
from vmcontainer.network.store import EndpointRecord, NetworkRecord, NetworkStore

A = ipaddress.IPv4Address
N = ipaddress.IPv4Network


def test_pool_defaults_and_checks() -> None:
    pool = ipam.make_pool("10.1.0.0/24")
    assert (str(pool.gateway), pool.ip_range) == ("10.1.0.1", N("10.1.0.0/24"))
    pool = ipam.make_pool("10.1.0.0/24", "10.1.0.254", "10.1.0.128/25")
    assert pool.to_docker(True) == {"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254",
                                    "IPRange": "10.1.0.128/25"}
    for bad in (("10.1.0.0/24", "10.2.0.1", ""), ("10.1.0.0/24", "", "10.2.0.0/25"),
                ("fd00::/64", "", ""), ("10.1.0.0/31", "", ""), ("nonsense", "", ""),
                ("10.1.0.0/24", "10.1.0.255", "")):
        with pytest.raises(InvalidParameter):
            ipam.make_pool(*bad)


def test_subnets_are_chosen_without_overlap() -> None:
    taken = [N("172.17.0.0/16")]
    first = ipam.choose_subnet(taken)
    assert first == N("172.18.0.0/16")
    assert ipam.choose_subnet([*taken, first]) == N("172.19.0.0/16")
    with pytest.raises(Conflict, match="Pool overlaps"):
        ipam.check_overlap(N("172.17.5.0/24"), taken)
    with pytest.raises(Unavailable):
        ipam.choose_subnet([N("0.0.0.0/0")])


def test_addresses_come_from_the_range_and_skip_used_ones() -> None:
    pool = ipam.make_pool("10.1.0.0/29", "10.1.0.1")
    assert ipam.allocate(pool, []) == A("10.1.0.2")
    assert ipam.allocate(pool, [A("10.1.0.2")]) == A("10.1.0.3")
    assert ipam.allocate(pool, [], "10.1.0.6") == A("10.1.0.6")
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate(pool, [A("10.1.0.6")], "10.1.0.6")
    with pytest.raises(Conflict):
        ipam.allocate(pool, [], "10.1.0.1")  # the gateway
    with pytest.raises(InvalidParameter):
        ipam.allocate(pool, [], "10.9.0.1")
    with pytest.raises(Unavailable):
        ipam.allocate(pool, [A(f"10.1.0.{i}") for i in range(2, 7)])
    ranged = ipam.make_pool("10.1.0.0/24", "", "10.1.0.128/25")
    assert ipam.allocate(ranged, []) == A("10.1.0.129")


def test_nft_script_masquerades_and_isolates() -> None:
    script = nat.rules("ab" * 32, "vmcbr-abababab", "10.1.0.0/24", internal=False)
    assert "table ip vmc-abababababab {" in script
    assert 'ip saddr 10.1.0.0/24 oifname != "vmcbr-abababab" masquerade' in script
    assert 'iifname "vmcbr-abababab" oifname "vmcbr-*" oifname != "vmcbr-abababab" drop' \
        in script
    internal = nat.rules("ab" * 32, "vmcbr-abababab", "10.1.0.0/24", internal=True)
    assert "masquerade" not in internal
    assert 'iifname "vmcbr-abababab" oifname != "vmcbr-abababab" drop' in internal
    raw = nat.rules("ab" * 32, "vmcbr-abababab", "10.1.0.0/24", internal=False,
                    masquerade=False)
    assert "masquerade" not in raw
    assert 'iifname "vmcbr-abababab" oifname != "vmcbr-abababab" drop' not in raw


def test_driver_options() -> None:
    options.check({"custom": "x", options.MASQUERADE: "False", options.MTU: "1500",
                   options.ICC: "1", options.IFACE_PREFIX: "eth",
                   options.HOST_BINDING: "10.0.0.1"})
    assert not options.masquerade({options.MASQUERADE: "f"})
    assert options.masquerade({}) and options.host_binding({}) == ""
    for bad, message in (({options.MTU: "9000"}, "driver.mtu=9000 is not supported"),
                         ({options.MTU: "x"}, 'strconv.Atoi: parsing "x"'),
                         ({options.ICC: "0"}, "enable_icc=0 is not supported"),
                         ({options.IFACE_PREFIX: "net"}, "container_iface_prefix=net"),
                         ({"com.docker.network.enable_ipv6": "true"}, "is not supported"),
                         ({options.HOST_BINDING: "::1"}, "not an IPv4 address")):
        with pytest.raises(InvalidParameter, match=re.escape(message)):
            options.check(bad)


def test_records_round_trip_and_lookups(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path)
    net = NetworkRecord(id="a1" * 32, name="appnet", created="t", subnet="10.1.0.0/24",
                        gateway="10.1.0.1")
    net = net.with_endpoint(EndpointRecord("c" * 64, "cache", "10.1.0.2",
                                           mac_for("10.1.0.2"), "vmt0", ("kv",)))
    store.save(net)
    assert store.find("appnet") == net and store.find("a1a1") == net
    assert net.bridge == "vmcbr-a1a1a1a1a" and len(net.bridge) <= 15
    with pytest.raises(Conflict):
        store.check_new_name("appnet")
    for bad in ("-x", "a/b", "a b", ""):
        with pytest.raises(InvalidParameter):
            store.check_new_name(bad)
    with pytest.raises(Conflict):
        store.check_new_name("host")


def test_mac_and_tap_names() -> None:
    assert mac_for("172.18.0.2") == "02:42:ac:12:00:02"  # as Docker derives it
    tap = tap_name("c" * 64, "n" * 64)
    assert len(tap) <= 15 and tap != tap_name("c" * 64, "m" * 64)


def test_endpoints_config_of_a_create_body() -> None:
    got = endpoints_config({"EndpointsConfig": {
        "default": None, "appnet": {"Aliases": ["kv", "kv"],
                                    "IPAMConfig": {"IPv4Address": "10.1.0.9"}}}})
    assert got == {"bridge": {"Aliases": [], "IPv4Address": ""},
                   "appnet": {"Aliases": ["kv"], "IPv4Address": "10.1.0.9"}}
    for bad in ({"EndpointsConfig": {"n": {"Aliases": ["a b"]}}},  # would break hosts
                {"EndpointsConfig": {"n": {"Aliases": ["x\nevil"]}}},
                {"EndpointsConfig": {"n": {"IPAMConfig": {"IPv4Address": 3}}}}):
        with pytest.raises(InvalidParameter):
            endpoints_config(bad)
