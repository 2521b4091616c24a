"""The container's process and environment from the image config and the create
request, with Docker's rules (moby daemon/create.go, container.CreateDaemonEnvironment,
runc's HOME rule — the agent applies the last one)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vmcontainer.errors import InvalidParameter

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _key(item: str) -> str:
    return item.split("=", 1)[0]


def merge_env(base: Iterable[str], override: Iterable[str]) -> list[str]:
    """``base`` with each ``KEY=VALUE`` of ``override`` replacing the same key in place
    or appended (Docker's ReplaceOrAppendEnvValues). A bare ``KEY`` in ``override``
    removes KEY, as Docker does for ``-e KEY`` with no value set on the host."""
    out = list(base)
    for item in override:
        k = _key(item)
        idx = next((i for i, e in enumerate(out) if _key(e) == k), None)
        if "=" not in item:
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(item)
        else:
            out[idx] = item
    return out


def resolve_command(
    image_entrypoint: Sequence[str] | None,
    image_cmd: Sequence[str] | None,
    entrypoint: Sequence[str] | None,
    cmd: Sequence[str] | None,
) -> list[str]:
    """Entrypoint + Cmd as Docker combines them: an explicit entrypoint drops the
    image's Cmd; an empty explicit entrypoint (``--entrypoint ""``) drops the image's
    entrypoint. Raises InvalidParameter("No command specified") when nothing is left.
    """
    if entrypoint is not None:
        ep = [e for e in entrypoint if e != ""] if list(entrypoint) == [""] else list(entrypoint)
        args = ep + list(cmd or [])
    else:
        args = list(image_entrypoint or []) + list(cmd if cmd else (image_cmd or []))
    if not args:
        raise InvalidParameter("No command specified")
    return args


def container_env(image_env: Iterable[str], env: Iterable[str]) -> list[str]:
    """Config.Env of a new container as Docker records it (moby ``merge``): the
    request's items as given (``KEY`` without ``=`` kept), then the image's whose
    key the request does not name. The process env drops bare items (process_env)."""
    env = list(env)
    for item in env:
        if not _key(item):
            raise InvalidParameter(f"invalid environment variable: {item}")
    if not env:
        return list(image_env)
    keys = {_key(e) for e in env}
    return env + [e for e in image_env if _key(e) not in keys]


def process_env(config_env: Iterable[str], hostname: str, tty: bool = False) -> list[str]:
    """The process environment: PATH and HOSTNAME (and TERM with a TTY) first, then
    Config.Env replacing or appending (CreateDaemonEnvironment)."""
    base = [DEFAULT_PATH, f"HOSTNAME={hostname}"]
    if tty:
        base.append("TERM=xterm")
    return merge_env(base, config_env)


def check_working_dir(path: str) -> str:
    """Docker requires an absolute working directory; "" means the image's or /."""
    if path and not path.startswith("/"):
        raise InvalidParameter(
            f"the working directory '{path}' is invalid, it needs to be an absolute path"
        )
    return path
