"""How skopeo reaches a registry: TLS policy, credentials, and errors in Docker's words.

TLS follows Docker's ``registry/config.go`` (``isSecureIndex``): a registry is
*insecure* — HTTPS without certificate checks, falling back to plain HTTP, which is
what ``skopeo --tls-verify=false`` does — when its host is a loopback address
(127.0.0.0/8, ::1, ``localhost``) or is listed in ``daemon.json``
``insecure-registries`` (``host[:port]`` or a CIDR such as ``10.0.0.0/8``); a host
name counts as insecure when any address it resolves to does, as in Docker.

Mirrors: daemon.json ``registry-mirrors`` (``http[s]://host[:port]`` URLs), as in
Docker, serve names of Docker Hub (``docker.io``) only: skopeo gets them as
``[[registry.mirror]]`` entries of a registries.conf(5) file for the ``docker.io``
prefix, tries them in order, then Docker Hub itself. A mirror is reached without
certificate checks when its URL is ``http://`` or its host is insecure as above.

Certificates: a registry that is not insecure is verified against the system CA
store plus, as Docker does, the ``*.crt`` files of its directory
``<certs dir>/<host:port>/`` (and a client certificate ``*.cert``/``*.key`` there);
the certs dirs are daemon.json ``registry-certs-dir`` if set, then
``/etc/vmcontainer/certs.d`` and ``/etc/docker/certs.d`` (the first that has the
registry's directory wins; skopeo gets it as ``--cert-dir``).

Credentials never reach argv (other users can read ``/proc/*/cmdline``): they go
into an auth file (containers-auth.json(5), the format of Docker's
``config.json``) with mode 0600 in the operation's staging directory.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.errors import (
    Forbidden,
    InvalidParameter,
    NotFound,
    System,
    Unauthorized,
    Unavailable,
    VmcError,
)
from vmcontainer.image.errors import ToolFailed
from vmcontainer.image.reference import Reference

MAX_CREDENTIAL_LENGTH = 16384
"""Longest user name, password or token accepted, in characters."""


@dataclass(frozen=True)
class Credentials:
    """What a client sent in ``X-Registry-Auth`` (Engine API ``AuthConfig``):
    ``username``/``password``, or an ``identity_token`` (OAuth refresh token)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __post_init__(self) -> None:
        for value in (self.username, self.password, self.identity_token):
            if len(value) > MAX_CREDENTIAL_LENGTH or "\x00" in value:
                raise InvalidParameter("invalid registry credentials")

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    def auth_entry(self) -> dict[str, str]:
        """One ``auths`` entry of an auth file: ``{"auth": base64("user:pass")}`` or
        ``{"identitytoken": ...}``."""
        if self.identity_token:
            return {"identitytoken": self.identity_token}
        pair = f"{self.username}:{self.password}".encode()
        return {"auth": base64.b64encode(pair).decode()}


ANONYMOUS = Credentials()
DEFAULT_CERTS_DIRS = ("/etc/vmcontainer/certs.d", "/etc/docker/certs.d")
"""Where per-registry CA directories (``<host:port>/ca.crt``) are looked for."""


def _host(domain: str) -> str:
    if domain.startswith("["):
        return domain[1:].partition("]")[0]
    return domain.rpartition(":")[0] if domain.count(":") == 1 else domain


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _addresses(host: str) -> list[Address]:
    """``host`` as an address, or what it resolves to ([] when it does not)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    found: list[Address] = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).partition("%")[0]))
        except ValueError:
            continue
    return found


def validate_mirror(url: str) -> str:
    """A ``registry-mirrors`` entry, as moby ``registry.ValidateMirror`` checks it:
    an ``http``/``https`` URL with a host and no path, query or credentials. Returns
    it as Docker shows it, ``scheme://host[:port]/``; raises InvalidParameter."""
    parsed = urllib.parse.urlsplit(url)
    quoted = json.dumps(url)
    if parsed.scheme not in ("http", "https"):
        raise InvalidParameter(f"invalid mirror: unsupported scheme {json.dumps(parsed.scheme)}"
                               f" in {quoted}")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise InvalidParameter(f"invalid mirror: path, query, or fragment at end of the URI "
                               f"{quoted}")
    if parsed.username is not None or parsed.password is not None:
        raise InvalidParameter(f"invalid mirror: username/password not allowed in URI {quoted}")
    if not parsed.hostname:
        raise InvalidParameter(f"invalid mirror: {quoted} is not a valid URI")
    return f"{parsed.scheme}://{parsed.netloc}/"


@dataclass(frozen=True)
class RegistryPolicy:
    """``insecure``: daemon.json ``insecure-registries`` entries (``host[:port]`` or
    CIDR); ``mirrors``: ``registry-mirrors`` URLs (validated)."""

    insecure: tuple[str, ...] = ()
    certs_dirs: tuple[str, ...] = DEFAULT_CERTS_DIRS
    mirrors: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, entries: Sequence[str], certs_dir: str = "",
                    mirrors: Sequence[str] = ()) -> RegistryPolicy:
        """Validate ``insecure-registries`` and ``registry-mirrors``; raises
        InvalidParameter for a bad entry."""
        for entry in entries:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise InvalidParameter(f"insecure-registries: {entry!r} is not a CIDR "
                                           "or host[:port]") from None
            elif not entry or "://" in entry or any(c.isspace() for c in entry):
                raise InvalidParameter(f"insecure-registries: {entry!r} is not a CIDR "
                                       "or host[:port]")
        dirs = ((certs_dir,) if certs_dir else ()) + DEFAULT_CERTS_DIRS
        return cls(tuple(entries), dirs, tuple(validate_mirror(m) for m in mirrors))

    def cert_dir(self, domain: str) -> Path | None:
        """The first ``<certs dir>/<domain>`` directory that exists, if any."""
        if "/" in domain or domain in ("", ".", ".."):
            return None
        for base in self.certs_dirs:
            candidate = Path(base) / domain
            if candidate.is_dir():
                return candidate
        return None

    def tls_verify(self, domain: str) -> bool:
        """Whether certificates of the registry at ``domain`` (``host[:port]``) are checked."""
        host = _host(domain)
        if any(entry in (domain, host) for entry in self.insecure if "/" not in entry):
            return False
        if domain == "docker.io":
            return True
        addresses = _addresses(host)
        if host == "localhost" or any(a.is_loopback for a in addresses):
            return False
        networks = [ipaddress.ip_network(e, strict=False) for e in self.insecure if "/" in e]
        return not any(a in net for a in addresses for net in networks)

    def registries_conf(self, workdir: Path) -> Path | None:
        """A registries.conf(5) in ``workdir`` listing the mirrors for ``docker.io``
        (None when there are none)."""
        if not self.mirrors:
            return None
        lines = ['unqualified-search-registries = []', '', '[[registry]]',
                 'prefix = "docker.io"', 'location = "docker.io"']
        for mirror in self.mirrors:
            scheme, _, host = mirror.rstrip("/").partition("://")
            insecure = scheme == "http" or not self.tls_verify(host)
            lines += ['', '[[registry.mirror]]', f'location = {json.dumps(host)}',
                      f'insecure = {"true" if insecure else "false"}']
        path = workdir / "registries.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def skopeo_args(self, side: str, domain: str, creds: Credentials, workdir: Path) -> list[str]:
        """``skopeo copy``/``inspect`` options for one end (``side``: "src", "dest",
        or "" for ``inspect``): TLS policy and, if any, an auth file in ``workdir``."""
        prefix = f"--{side}-" if side else "--"
        args = [] if self.tls_verify(domain) else [f"{prefix}tls-verify=false"]
        conf = self.registries_conf(workdir) if domain == "docker.io" else None
        if conf is not None:
            args.append(f"--registries-conf={conf}")
        certs = self.cert_dir(domain)
        if certs is not None:
            args.append(f"{prefix}cert-dir={certs}")
        if creds.empty:
            return [*args, f"{prefix}no-creds"] if side else args
        authfile = workdir / f"auth-{side or 'inspect'}.json"
        fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"auths": {domain: creds.auth_entry()}}, fh)
        return [*args, f"{prefix}authfile={authfile}"]


def registry_error(err: ToolFailed, ref: Reference) -> VmcError:
    """Docker's wording for a failed registry operation on ``ref`` (moby
    ``distribution/errors.go``): a missing manifest is NotFound (``manifest for
    127.0.0.1:5000/busybox:nosuch not found: manifest unknown: manifest unknown``),
    refused credentials Unauthorized (401), denied access Forbidden (403), an
    unreachable registry Unavailable, anything else System; skopeo's own cause."""
    text = str(err)
    message = text.partition(": ")[2] or text  # without "skopeo failed (exit 1): "
    if "manifest unknown" in text:
        return NotFound(f"manifest for {ref.familiar} not found: manifest unknown: "
                        "manifest unknown")
    if "unauthorized" in text or "authentication required" in text:
        return Unauthorized(_after_initializing(message))
    if "denied" in text:
        return Forbidden(_after_initializing(message))
    if "connection refused" in text or "no such host" in text or "i/o timeout" in text:
        return Unavailable(_after_initializing(message))
    return System(_after_initializing(message))


def _after_initializing(message: str) -> str:
    """skopeo's ``initializing source docker://x: reading manifest ...: cause`` without
    the clauses that name skopeo's transport rather than the image (Docker says
    ``Get "https://host/v2/": dial tcp ...: connection refused``)."""
    for lead in ("pinging container registry ",):
        head, found, rest = message.partition(lead)
        if found:
            return rest.partition(": ")[2] or message
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith(("initializing ", "copying ")) else message
