"""The container's /etc/hosts and /etc/resolv.conf (Docker's defaults, plus
``--add-host``, ``--dns``, ``--dns-search``, ``--dns-option``), written by the
guest agent over the image's files (guest/PROTOCOL.md, config ``hosts``,
``resolv_conf``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from vmcontainer.errors import InvalidParameter

#: Docker's fallback name servers when the host has none usable (moby
#: libnetwork/resolvconf defaultIPv4Dns).
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")


def check_extra_hosts(items: Sequence[str]) -> None:
    """``name:ip`` items (HostConfig.ExtraHosts). Raises InvalidParameter with the
    docker CLI's wording for a malformed one; ``host-gateway`` is refused (a VM
    container without a network has no gateway to map)."""
    for item in items:
        name, sep, ip = item.partition(":")
        if not sep or not name or not ip:
            raise InvalidParameter(f"bad format for add-host: {item!r}")
        if ip == "host-gateway":
            raise InvalidParameter("add-host host-gateway is not supported by vmcontainer "
                                   "yet: the container has no network gateway")
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: {ip!r}") from None


def check_dns(servers: Sequence[str]) -> None:
    for s in servers:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise InvalidParameter(f"{s} is not an ip address") from None


def hosts_text(hostname: str, extra_hosts: Sequence[str] = ()) -> str:
    """/etc/hosts of a container without network endpoints (Docker's defaults), then
    one line per ``name:ip`` of ``extra_hosts``, as Docker appends them."""
    text = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n")
    for item in extra_hosts:
        name, _, ip = item.partition(":")
        text += f"{ip.strip('[]')}\t{name}\n"
    return text + f"127.0.1.1\t{hostname}\n"


def resolv_conf_text(dns: Sequence[str] = (), search: Sequence[str] = (),
                     options: Sequence[str] = (), host_file: Path = Path("/etc/resolv.conf")
                     ) -> str:
    """The host's resolv.conf without loopback name servers (unreachable from the
    guest), as Docker filters it, Docker's fallback servers when none remain; each
    of ``dns``/``search``/``options`` given replaces that part (moby sandbox_dns)."""
    try:
        lines = host_file.read_text().splitlines()
    except OSError:
        lines = []
    servers = [ln.split()[1] for ln in lines
               if ln.startswith("nameserver") and len(ln.split()) > 1]
    servers = [s for s in servers if not (s.startswith("127.") or s == "::1")]
    host_search = [w for ln in lines if ln.startswith(("search", "domain"))
                   for w in ln.split()[1:]]
    host_options = [w for ln in lines if ln.startswith("options") for w in ln.split()[1:]]
    out = [f"nameserver {s}" for s in (list(dns) or servers or list(FALLBACK_DNS))]
    if search or host_search:
        out.append("search " + " ".join(list(search) or host_search))
    if options or host_options:
        out.append("options " + " ".join(list(options) or host_options))
    return "\n".join(out) + "\n"
