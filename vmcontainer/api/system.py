"""System routes: ``/_ping``, ``/version``, ``/info`` (Docker's shapes, as far as
they apply to VMs), and the swarm endpoints, which answer as a node outside any
swarm does (503)."""

from __future__ import annotations

import asyncio
import os
import platform
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vmcontainer import __version__
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import API_VERSION, MIN_API, Route, server_headers
from vmcontainer.api.errors import SWARM_MESSAGE
from vmcontainer.api.hostinfo import go_arch, host_info
from vmcontainer.api.responses import json_error, json_response

if TYPE_CHECKING:
    from vmcontainer.image.registry import RegistryPolicy

DEBUG = web.AppKey("debug", bool)

SWARM_PREFIXES = ("swarm", "services", "nodes", "secrets", "configs", "tasks")
TCG_WARNING = ("WARNING: KVM is not usable: containers run in VMs under TCG software "
               "emulation, slowly")


async def ping(request: web.Request) -> web.Response:
    headers = {**server_headers(), "Cache-Control": "no-cache, no-store, must-revalidate",
               "Pragma": "no-cache", "Swarm": "inactive"}
    if request.method == "HEAD":
        headers["Content-Length"] = "0"
        return web.Response(status=200, headers=headers, content_type="text/plain")
    return web.Response(text="OK", headers=headers, content_type="text/plain")


async def version(request: web.Request) -> web.Response:
    host = await asyncio.to_thread(host_info)
    accel = str(engine(request).info().get("Accelerator", ""))
    arch = go_arch(host.architecture)
    return json_response({
        "Platform": {"Name": "vmcontainer"},
        "Components": [
            {"Name": "Engine", "Version": __version__, "Details": {
                "ApiVersion": API_VERSION, "Arch": arch, "BuildTime": "",
                "Experimental": "false", "GitCommit": "", "GoVersion": "",
                "KernelVersion": host.kernel, "MinAPIVersion": MIN_API, "Os": "linux"}},
            {"Name": "qemu", "Version": host.qemu_version,
             "Details": {"Accelerator": accel}},
        ],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": arch, "KernelVersion": host.kernel, "BuildTime": "",
    })


def _daemon_id(root: str, hostname: str) -> str:
    machine = ""
    try:
        with open("/etc/machine-id") as fh:
            machine = fh.read().strip()
    except OSError:
        pass
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vmcontainer:{machine}:{hostname}:{root}"))


#: ``docker info``'s "Network mode" line (under Storage Driver, beside Backend).
NETWORK_MODES = {
    "bridge": "bridge (Linux bridges, taps, nftables, dnsmasq; user-defined networks)",
    "user": "user (QEMU user networking; user-defined networks need the daemon as "
            "root with --network-mode bridge)"}


def _ip_forward() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


def _nfd() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _registry_config(policy: RegistryPolicy) -> dict[str, object]:
    """Engine API ``RegistryConfig``: moby ``registry.ServiceConfig`` (loopback is
    always insecure; Docker Hub's index entry carries the mirrors)."""
    cidrs = ["127.0.0.0/8", *(e for e in policy.insecure if "/" in e)]
    indexes: dict[str, object] = {
        "docker.io": {"Name": "docker.io", "Mirrors": list(policy.mirrors), "Secure": True,
                      "Official": True}}
    for entry in policy.insecure:
        if "/" not in entry:
            indexes[entry] = {"Name": entry, "Mirrors": [], "Secure": False,
                              "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": indexes,
            "Mirrors": list(policy.mirrors)}


async def info(request: web.Request) -> web.Response:
    eng = engine(request)
    host = await asyncio.to_thread(host_info)
    counts: dict[str, Any] = eng.info()
    backend_status = [list(kv) for kv in counts.pop("BackendStatus", [])]
    accel = str(counts.get("Accelerator", ""))
    root = str(eng.ctx.settings.root)
    mode = eng.ctx.settings.network_driver
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "ID": _daemon_id(root, host.hostname),
        "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0,
        "ContainersStopped": 0, "Images": 0,
        **counts,
        "Driver": "qcow2",
        "DriverStatus": [["Base disks", "ext4, read-only, one per image"],
                         ["Container disks", "qcow2 overlays"], *backend_status,
                         ["Network mode", NETWORK_MODES[mode]]],
        "Plugins": {"Volume": [], "Network": ["bridge", "null"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": False, "KernelMemory": False,
        "KernelMemoryTCP": False, "CpuCfsPeriod": False, "CpuCfsQuota": False,
        "CPUShares": False, "CPUSet": False, "PidsLimit": False, "OomKillDisable": False,
        "IPv4Forwarding": mode == "bridge" and _ip_forward(), "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": request.app[DEBUG], "NFd": _nfd(),
        "NGoroutines": threading.active_count() + len(asyncio.all_tasks()),
        "SystemTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z",
        "LoggingDriver": "json-file", "CgroupDriver": "none", "CgroupVersion": "",
        "NEventsListener": 0, "KernelVersion": host.kernel,
        "OperatingSystem": host.operating_system, "OSVersion": host.os_version,
        "OSType": "linux", "Architecture": host.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(eng.ctx.images.registries),
        "NCPU": host.ncpu, "MemTotal": host.mem_total, "GenericResources": None,
        "DockerRootDir": root,
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": host.hostname, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": {"vmcontainer": {"path": "qemu-system-x86_64",
                                     "runtimeArgs": ["-accel", accel] if accel else []}},
        "DefaultRuntime": "vmcontainer",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": [],
        "Warnings": [TCG_WARNING] if accel == "tcg" else None,
    }
    return json_response(body)


async def swarm(request: web.Request) -> web.Response:
    return json_error(503, SWARM_MESSAGE)


def routes() -> list[Route]:
    out: list[Route] = [
        ("GET", "/_ping", ping), ("HEAD", "/_ping", ping),
        ("GET", "/version", version), ("GET", "/info", info),
    ]
    for prefix in SWARM_PREFIXES:
        out += [("*", f"/{prefix}", swarm), ("*", f"/{prefix}/{{rest:.*}}", swarm)]
    return out
