"""Create a container: resolve the image, build the record, make its overlay disk.

Rolls back on failure: a half-created container leaves no directory behind.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import replace
from typing import Any

from vmcontainer.engine.container import Container
from vmcontainer.engine.mounts import inherit_mounts, prepare_mounts, remove_anonymous
from vmcontainer.engine.names import random_name, validate_name
from vmcontainer.engine.process import check_working_dir, container_env, resolve_command
from vmcontainer.engine.resources import check_resources, check_restart_policy, defaults
from vmcontainer.engine.signals import parse_signal
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.engine.state import now_rfc3339
from vmcontainer.engine.store import ContainerStore
from vmcontainer.errors import InvalidParameter
from vmcontainer.image.store import Image, ImageStore
from vmcontainer.vm.overlay import create_overlay
from vmcontainer.volume.store import VolumeStore


def _config(spec: ContainerSpec, image: Image, hostname: str, env: list[str]) -> dict[str, Any]:
    ic: dict[str, Any] = image.config.get("config") or {}
    return {
        "Hostname": hostname,
        "Domainname": "",
        "User": spec.user or ic.get("User", ""),
        "AttachStdin": spec.attach_stdin,
        "AttachStdout": spec.attach_stdout,
        "AttachStderr": spec.attach_stderr,
        "Tty": spec.tty,
        "OpenStdin": spec.open_stdin,
        "StdinOnce": spec.stdin_once,
        "Env": env,
        "Cmd": list(spec.cmd) if spec.cmd is not None else ic.get("Cmd"),
        "Image": spec.image,
        "Volumes": {**(ic.get("Volumes") or {}), **{v: {} for v in spec.volumes}} or None,
        **({"ExposedPorts": exposed} if (exposed := _exposed(spec, ic)) else {}),
        "WorkingDir": spec.working_dir or ic.get("WorkingDir", ""),
        "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None
        else ic.get("Entrypoint"),
        "OnBuild": None,
        "Labels": {**(ic.get("Labels") or {}), **spec.labels},
        "StopSignal": spec.stop_signal or ic.get("StopSignal"),
        **({"StopTimeout": spec.stop_timeout} if spec.stop_timeout is not None else {}),
        **({"Healthcheck": hc} if (hc := _healthcheck(spec, ic)) else {}),
    }


def _exposed(spec: ContainerSpec, ic: dict[str, Any]) -> dict[str, Any]:
    """Config.ExposedPorts: the image's, the request's and every published port."""
    keys = [*(ic.get("ExposedPorts") or {}), *spec.exposed_ports, *spec.port_bindings]
    return {k if "/" in k else f"{k}/tcp": {} for k in keys}


def _healthcheck(spec: ContainerSpec, ic: dict[str, Any]) -> dict[str, Any] | None:
    """The container's HealthConfig: the create request's fields over the image's
    (moby ``merge``: a zero field takes the image's value)."""
    image_hc: dict[str, Any] = dict(ic.get("Healthcheck") or {})
    if spec.healthcheck is None:
        return image_hc or None
    merged = {**image_hc, **{k: v for k, v in spec.healthcheck.items() if v}}
    return merged or None


def _host_config(spec: ContainerSpec) -> dict[str, Any]:
    rc: dict[str, Any] = {**defaults(), **spec.resources,
                          "Memory": spec.memory_bytes, "NanoCpus": spec.nano_cpus}
    check_resources(rc)
    if rc["Memory"] > 0 and not rc["MemorySwap"]:
        rc["MemorySwap"] = rc["Memory"] * 2  # as Docker records it
    check_restart_policy(spec.restart_policy, spec.restart_max_retries)
    if spec.auto_remove and spec.restart_policy not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if spec.stop_signal:
        parse_signal(spec.stop_signal)
    return {
        "Binds": None,
        "LogConfig": {"Type": "json-file", "Config": dict(spec.log_options)},
        "NetworkMode": spec.network_mode,
        "PortBindings": spec.port_bindings,
        "PublishAllPorts": spec.publish_all,
        "RestartPolicy": {"Name": spec.restart_policy or "no",
                          "MaximumRetryCount": spec.restart_max_retries},
        "AutoRemove": spec.auto_remove,
        "GroupAdd": list(spec.group_add) or None,
        "ConsoleSize": list(spec.console_size) if spec.console_size else [0, 0],
        "Init": spec.init,
        "Dns": list(spec.dns), "DnsSearch": list(spec.dns_search),
        "DnsOptions": list(spec.dns_options), "ExtraHosts": list(spec.extra_hosts) or None,
        "Runtime": "vmcontainer",
        **rc,
        **spec.mount_config,
    }


def vm_size(host_config: dict[str, Any], default_mib: int, default_vcpus: int) -> tuple[int, int]:
    """(memory MiB, vCPUs) of the VM: ``Memory`` bytes become the guest's RAM,
    ``NanoCpus`` rounds up to whole vCPUs."""
    mem = host_config.get("Memory") or 0
    cpus = host_config.get("NanoCpus") or 0
    return (mem >> 20 if mem else default_mib,
            max(1, math.ceil(cpus / 1e9)) if cpus else default_vcpus)


def create_container(store: ContainerStore, images: ImageStore, spec: ContainerSpec,
                     volumes: VolumeStore | None = None) -> Container:
    """Validate ``spec``, resolve its image (building the image's base disk on first
    use), persist a new record in state ``created`` and make its qcow2 overlay.

    Raises ImageNotFound, InvalidParameter (bad name, working dir, sizes, no
    command), Conflict (name in use), System (disk tools failing).
    """
    name = validate_name(spec.name) if spec.name else ""
    check_working_dir(spec.working_dir)
    image = images.resolve(spec.image)
    ic: dict[str, Any] = image.config.get("config") or {}
    args = resolve_command(ic.get("Entrypoint"), ic.get("Cmd"), spec.entrypoint, spec.cmd)
    host_config = _host_config(spec)
    cid = secrets.token_hex(32)
    hostname = spec.hostname or cid[:12]
    if len(hostname) > 63 or not all(p for p in hostname.split(".")):
        raise InvalidParameter(f"invalid hostname format: {hostname}")
    env = container_env(ic.get("Env") or [], spec.env)
    base = images.rootfs_disk(image)
    container = Container(
        id=cid, name="", created=now_rfc3339(), path=args[0], args=tuple(args[1:]),
        image_id=image.id, config=_config(spec, image, hostname, env), host_config=host_config,
        endpoints_config=dict(spec.endpoints),
    )
    directory = store.dir(cid)
    with store.locked():
        if name:
            store.check_name_free(name)
        else:
            name = random_name()
            while any(c.name == name for c in store.all()):
                name = random_name()
        try:
            if volumes is not None:
                wanted = inherit_mounts(store, spec.mount_config.get("VolumesFrom") or (),
                                        spec.mounts)
                container = replace(container, mounts=prepare_mounts(
                    volumes, wanted, (ic.get("Volumes") or {}).keys(), base,
                    container.created))
            directory.mkdir(parents=True)
            container = Container(**{**container.__dict__, "name": name})
            create_overlay(base, directory / "rootfs.qcow2")
            store.save(container)
        except BaseException:
            store.delete(cid)
            if volumes is not None:
                remove_anonymous(volumes, store, container.mounts, cid)
            raise
    return container


