"""The CLI as a client of a vmcontainer daemon (``-H unix:///path``,
``-H ssh://user@host``, or ``VMCONTAINER_HOST``), through docker-py's low-level
APIClient — the same Engine API the ``docker`` CLI speaks; SSH through paramiko.

Exit codes and messages follow the docker CLI: 125 when the daemon refuses to
create or start, 126/127 from the start error's text (as the docker CLI derives
them), otherwise the container's exit code.
"""

from __future__ import annotations

import json
import signal
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from vmcontainer.engine.spec import ContainerSpec

PROXIED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
           signal.SIGUSR1, signal.SIGUSR2)


def client(host: str) -> Any:
    """A docker-py APIClient for ``host`` (imported here: it is slow to import)."""
    import docker

    try:
        return docker.APIClient(base_url=host, version="auto", use_ssh_client=False,
                                timeout=None)
    except docker.errors.DockerException as err:
        click.echo(f"Cannot connect to the vmcontainer daemon at {host}. Is the daemon "
                   f"running? ({err.__cause__ or err})", err=True)
        sys.exit(125 if click.get_current_context().info_name == "run" else 1)


def _error_text(err: Exception) -> str:
    explanation = getattr(err, "explanation", None)
    return str(explanation or err)


def _exit_code_for(message: str) -> int:
    """The docker CLI's mapping of a start error to an exit code."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def _die(message: str, code: int) -> None:
    click.echo(f"vmcontainer: Error response from daemon: {message}\n", err=True)
    click.echo("Run 'vmcontainer run --help' for more information", err=True)
    sys.exit(code)


def run(host: str, spec: ContainerSpec, detach: bool) -> int:
    """``docker run`` against the daemon: create, attach, wait, start, stream."""
    import docker.errors

    api = client(host)
    host_config = api.create_host_config(
        auto_remove=spec.auto_remove,
        mem_limit=spec.memory_bytes or None,
        nano_cpus=spec.nano_cpus or None,
    )
    try:
        created = api.create_container(
            spec.image, command=list(spec.cmd) if spec.cmd is not None else None,
            entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
            environment=list(spec.env), working_dir=spec.working_dir or None,
            user=spec.user or None, hostname=spec.hostname or None,
            name=spec.name or None, labels=spec.labels, host_config=host_config,
            detach=detach)
    except docker.errors.ImageNotFound as err:
        click.echo(f"Unable to find image '{spec.image}' locally", err=True)
        _die(_error_text(err), 125)
    except docker.errors.APIError as err:
        _die(_error_text(err), 125)
    cid = created["Id"]
    if detach:
        try:
            api.start(cid)
        except docker.errors.APIError as err:
            text = _error_text(err)
            _die(text, _exit_code_for(text))
        click.echo(cid)
        return 0
    output = api.attach(cid, stream=True, stdout=True, stderr=True, demux=True, logs=False)
    condition = "removed" if spec.auto_remove else "next-exit"
    result: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: result.update(api.wait(cid, condition=condition)), daemon=True)
    waiter.start()
    try:
        api.start(cid)
    except docker.errors.APIError as err:
        text = _error_text(err)
        _die(text, _exit_code_for(text))
    for signum in PROXIED:
        signal.signal(signum, lambda n, _f: api.kill(cid, int(n)))
    _copy(output)
    waiter.join()
    return int(result.get("StatusCode", 125))


def _copy(output: Iterator[tuple[bytes | None, bytes | None]]) -> None:
    for out, err in output:
        if out:
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
        if err:
            sys.stderr.buffer.write(err)
            sys.stderr.buffer.flush()


def ps(host: str, show_all: bool) -> list[dict[str, Any]]:
    return list(client(host).containers(all=show_all))


def logs(host: str, ref: str, follow: bool, timestamps: bool, tail: str) -> None:
    import docker.errors

    api = client(host)
    params = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": int(timestamps),
              "tail": tail}
    try:
        tty = api.inspect_container(ref)["Config"]["Tty"]
        res = api._get(api._url("/containers/{0}/logs", ref), params=params, stream=True)
        api._raise_for_status(res)
    except docker.errors.APIError as err:
        click.echo(f"Error response from daemon: {_error_text(err)}", err=True)
        sys.exit(1)
    # docker-py's public logs() merges the two streams: read the frames ourselves.
    _copy(_demux(res.raw, tty))


def _demux(raw: Any, tty: bool) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(stdout, stderr) pairs from a logs body: Docker's 8-byte frame headers (stream
    byte, three zero bytes, big-endian length) without a TTY, raw bytes with one."""
    while True:
        if tty:
            data = raw.read(65536)
            if not data:
                return
            yield data, None
            continue
        header = raw.read(8)
        if len(header) < 8:
            return
        stream, length = struct.unpack(">BxxxL", header)
        data = raw.read(length)
        yield (data, None) if stream == 1 else (None, data)


def inspect(host: str, names: tuple[str, ...]) -> int:
    import docker.errors

    api, out, code = client(host), [], 0
    for name in names:
        try:
            out.append(api.inspect_container(name))
        except docker.errors.NotFound:
            try:
                out.append(api.inspect_image(name))
            except docker.errors.NotFound:
                click.echo(f"Error: No such object: {name}", err=True)
                code = 1
    click.echo(json.dumps(out, indent=4))
    return code


def rm(host: str, names: tuple[str, ...], force: bool) -> int:
    import docker.errors

    api, code = client(host), 0
    for name in names:
        try:
            api.remove_container(name, force=force)
            click.echo(name)
        except docker.errors.APIError as err:
            click.echo(f"Error response from daemon: {_error_text(err)}", err=True)
            code = 1
    return code


def load(host: str, archive: Path | None) -> None:
    api = client(host)
    data = archive.read_bytes() if archive is not None else sys.stdin.buffer.read()
    for line in api.load_image(data):
        text = line.get("stream") or line.get("status") or ""
        if text:
            click.echo(text.rstrip("\n"))


def images(host: str) -> list[dict[str, Any]]:
    return list(client(host).images())


def rmi(host: str, names: tuple[str, ...], force: bool) -> int:
    import docker.errors

    api, code = client(host), 0
    for name in names:
        try:
            for item in api.remove_image(name, force=force):
                for k, v in item.items():
                    click.echo(f"{k}: {v}")
        except docker.errors.APIError as err:
            click.echo(f"Error response from daemon: {_error_text(err)}", err=True)
            code = 1
    return code
