"""Docker image references: parsing, normalisation and the familiar short form.

Grammar and messages follow ``github.com/distribution/reference`` (v0.6,
``regexp.go``, ``normalize.go``, ``reference.go``), which the Docker Engine uses:

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [domain "/"] path-component ["/" path-component]*
    domain    := host [":" port]          (a DNS name, IPv4 or [IPv6])
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator: "." "_" "__" "-"+
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex        (sha256: 64 lowercase hex digits)

Normalisation (``ParseNormalizedNamed`` + ``TagNameOnly``): ``busybox`` is
``docker.io/library/busybox:latest``, ``user/img`` is ``docker.io/user/img:latest``;
the first component is a domain when it holds ``.`` or ``:``, is ``localhost``, or
has uppercase letters. Errors raise :class:`InvalidReference` with Docker's text,
e.g. ``invalid reference format: repository name (library/Busybox) must be lowercase``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vmcontainer.image.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
"""Longest repository path Docker accepts, in characters."""

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

_REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)")
_TAG_RE = re.compile(_TAG)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_ID_PREFIX_RE = re.compile(r"(?:sha256:)?([a-f0-9]{1,64})")

_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_MAX_INPUT = 4096
"""Inputs longer than this (characters) are refused before any regex runs."""


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised reference: ``docker.io/library/busybox:latest``.

    ``domain`` (``docker.io``), ``path`` (``library/busybox``), ``tag``
    (``latest`` or None) and ``digest`` (``sha256:<64 hex>`` or None).
    ``str(ref)`` is the full form; :attr:`familiar` is Docker's short form.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker prints it: ``busybox``, ``user/img``,
        ``localhost:5000/a/b`` (``FamiliarName``)."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX):]:
            return path[len(OFFICIAL_REPO_PREFIX):]
        return path

    @property
    def familiar(self) -> str:
        """Docker's short form with tag and digest: ``busybox:latest`` (``FamiliarString``)."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """This repository with ``tag`` and no digest; InvalidReference for a bad tag."""
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference("invalid tag format")
        return replace(self, tag=tag, digest=None)

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag is not None else ""
        return suffix + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_docker_domain(name: str) -> tuple[str, str]:
    """``splitDockerDomain``: (domain, remainder) with Docker Hub's implicit parts."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = first, rest
    elif first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _validate_digest(digest: str) -> None:
    algorithm, _, hex_part = digest.partition(":")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidReference("unsupported digest algorithm")
    if len(hex_part) != length:
        raise InvalidReference("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", hex_part):
        raise InvalidReference("invalid checksum digest format")


def _parse(s: str) -> Reference:
    """``reference.Parse`` of an already-normalised string."""
    match = _REFERENCE_RE.fullmatch(s)
    if match is None:
        if s == "":
            raise InvalidReference("repository name must have at least one component")
        if _REFERENCE_RE.fullmatch(s.lower()):
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = _NAME_RE.fullmatch(name)
    assert name_match is not None  # the name group matched the same pattern
    domain, path = name_match.group(1) or "", name_match.group(2)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference("repository name must not be more than 255 characters")
    if digest is not None:
        _validate_digest(digest)
    return Reference(domain, path, tag, digest)


def parse_normalized(s: str) -> Reference:
    """Parse ``s`` as Docker's ``ParseNormalizedNamed`` does; no tag is added.

    Raises InvalidReference (an InvalidParameter) with Docker's wording.
    """
    if len(s) > _MAX_INPUT:
        raise InvalidReference("invalid reference format")
    if _IDENTIFIER_RE.fullmatch(s):
        raise InvalidReference(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    return _parse(f"{domain}/{remainder}")


def normalize(s: str) -> Reference:
    """Parse and normalise ``s``, adding the ``latest`` tag to a bare name.

    ``busybox`` -> ``docker.io/library/busybox:latest``; ``name@sha256:<hex>`` keeps
    its digest and gets no tag. Raises InvalidReference (an InvalidParameter).
    """
    ref = parse_normalized(s)
    if ref.tag is None and ref.digest is None:
        ref = replace(ref, tag=DEFAULT_TAG)
    return ref


def id_prefix(s: str) -> str | None:
    """The hex part if ``s`` can be an image ID or ID prefix (``[sha256:]hex{1,64}``)."""
    match = _ID_PREFIX_RE.fullmatch(s)
    return match.group(1) if match else None


def is_full_id(s: str) -> bool:
    """True for ``<64 hex>`` or ``sha256:<64 hex>``."""
    hex_part = id_prefix(s)
    return hex_part is not None and len(hex_part) == 64


def truncate_id(image_id: str) -> str:
    """Docker's short ID: the first 12 hex digits, without ``sha256:``."""
    return image_id.split(":", 1)[-1][:12]
