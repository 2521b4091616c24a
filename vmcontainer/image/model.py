"""What the image room hands out: :class:`Image` and its typed :class:`RunConfig`.

``Image.config`` is the image configuration document exactly as stored (OCI
image-spec ``config.md``; Docker image spec v1.2 adds ``Healthcheck``, ``OnBuild``,
``Shell``, ``container_config``, ``docker_version``...). :class:`RunConfig` is the
typed view of its ``config`` object, the defaults a container starts from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _keys(value: object) -> tuple[str, ...]:
    return tuple(str(k) for k in value) if isinstance(value, dict) else ()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class RunConfig:
    """An image's execution defaults (the ``config`` object of the image config).

    ``entrypoint``/``cmd``: argv tuples, None when unset (Docker distinguishes unset
    from empty). ``env``: ``KEY=value`` strings. ``exposed_ports``: ``"80/tcp"``
    strings. ``volumes``: container paths. ``stop_signal``: e.g. ``SIGTERM`` or "".
    ``shell``: the SHELL for shell-form commands (Docker-only; None if unset).
    """

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    shell: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> RunConfig:
        """Build from an image config document; mistyped fields read as unset."""
        run = config.get("config")
        if not isinstance(run, dict):
            return cls()
        labels = run.get("Labels")
        return cls(
            entrypoint=_strings(run.get("Entrypoint")),
            cmd=_strings(run.get("Cmd")),
            env=_strings(run.get("Env")) or (),
            working_dir=_text(run.get("WorkingDir")),
            user=_text(run.get("User")),
            exposed_ports=_keys(run.get("ExposedPorts")),
            volumes=_keys(run.get("Volumes")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            stop_signal=_text(run.get("StopSignal")),
            shell=_strings(run.get("Shell")),
        )


@dataclass(frozen=True)
class Image:
    """One image in the local store.

    ``id``: ``sha256:<hex>`` digest of the config blob (Docker's image ID).
    ``repo_tags``: familiar ``name:tag`` strings, sorted (``busybox:latest``); empty
    for a dangling image. ``repo_digests``: ``name@sha256:...`` (empty for loaded
    and imported images). ``config``: the image config document as parsed JSON (a
    fresh copy per Image; typed as ``dict[str, Any]`` because it is a JSON document
    passed through to Docker API answers: prefer :attr:`run_config` for typed access).
    ``created``: RFC 3339 text from the config ("" if absent). ``size``: bytes, the
    sum of the stored layer blobs (uncompressed for loaded docker archives and
    imports, as Docker counts). ``layers``: layer blob digests, bottom first;
    ``diff_ids``: digests of the uncompressed layers. ``manifest_digest``: the
    OCI manifest in the store.
    """

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    config: dict[str, Any]
    created: str
    size: int
    layers: tuple[str, ...]
    diff_ids: tuple[str, ...]
    manifest_digest: str

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the ID, as ``docker images`` prints it."""
        return self.id.split(":", 1)[-1][:12]

    @property
    def architecture(self) -> str:
        """The config's ``architecture`` (``amd64``), "" if absent."""
        return _text(self.config.get("architecture"))

    @property
    def os(self) -> str:
        """The config's ``os`` (``linux``), "" if absent."""
        return _text(self.config.get("os"))

    @property
    def run_config(self) -> RunConfig:
        """The typed execution defaults (Entrypoint, Cmd, Env, WorkingDir, User, ...)."""
        return RunConfig.from_config(self.config)
