"""Published ports: PortBindings/ExposedPorts checks, host port choice, and the
NetworkSettings.Ports / ContainerSummary.Ports shapes (pure logic plus real binds
on loopback)."""

from __future__ import annotations

import socket

import pytest

from vmcontainer.api.createnet import network_fields
from vmcontainer.errors import InvalidParameter, System
from vmcontainer.network.ports import (
    EPHEMERAL,
    PortBinding,
    bind_ports,
    check_port_bindings,
    ports_settings,
    ps_ports,
)


def test_bindings_are_normalised() -> None:
    got = check_port_bindings({"80": [{"HostIp": "", "HostPort": "8080"}], "53/udp": None})
    assert got == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": []}


@pytest.mark.parametrize("bad", [
    {"80/sctp": []}, {"x/tcp": []}, {"0/tcp": []}, {"70000": []},
    {"80": [{"HostIp": "1.2.3", "HostPort": "1"}]}, {"80": [{"HostPort": "99999"}]},
    {"80": [{"HostPort": "9-3"}]}, {"80": [{"HostPort": 80}]}, {"80": "x"},
])
def test_bad_bindings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        check_port_bindings(bad)


def test_network_modes() -> None:
    assert network_fields({}, {})["network_mode"] == "default"  # as moby records it
    for mode in ("default", "bridge", "none", "appnet"):  # names are looked up at start
        assert network_fields({}, {"NetworkMode": mode})["network_mode"] == mode
    for mode in ("host", "container:abc"):
        with pytest.raises(InvalidParameter, match="not supported by vmcontainer"):
            network_fields({}, {"NetworkMode": mode})
    with pytest.raises(InvalidParameter):
        network_fields({}, {"NetworkMode": 3})


def test_free_ports_are_chosen_and_taken_ones_refused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        got = bind_ports({"80/tcp": [{"HostIp": "", "HostPort": ""}],
                          "81/tcp": [{"HostIp": "", "HostPort": f"{taken}-{taken + 50}"}]},
                         True, {"80/tcp": {}, "443/tcp": {}}, "127.0.0.1", "c (id)")
        assert [(b.port, b.host_ip) for b in got] == [
            (80, "127.0.0.1"), (81, "127.0.0.1"), (443, "127.0.0.1")]
        assert EPHEMERAL[0] <= got[0].host_port <= EPHEMERAL[1]
        assert taken < got[1].host_port <= taken + 50
        with pytest.raises(System, match=f"Bind for 127.0.0.1:{taken} failed: port is "
                           "already allocated"):
            bind_ports({"80/tcp": [{"HostIp": "", "HostPort": str(taken)}]}, False, {},
                       "127.0.0.1", "c (id)")
    with pytest.raises(InvalidParameter, match="not an address of this host"):
        bind_ports({"80/tcp": [{"HostIp": "192.0.2.1", "HostPort": ""}]}, False, {},
                   "127.0.0.1", "c (id)")


def test_settings_and_ps_shapes() -> None:
    bound = [PortBinding(80, "tcp", "127.0.0.1", 18080)]
    settings = ports_settings(bound, {"80/tcp": {}, "53/udp": {}})
    assert settings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                        "53/udp": None}
    assert ps_ports(settings) == [
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"}]
