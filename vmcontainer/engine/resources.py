"""HostConfig resources (Engine API v1.45 ``Resources``) of a VM container, and
``docker update`` (moby ``daemon/update.go``, ``container.UpdateContainer``).

A VM honours two of them: ``Memory`` (its RAM) and ``NanoCpus`` (its vCPUs,
rounded up), both read when the VM boots. The others (cgroup knobs: CpuShares,
MemoryReservation, BlkioWeight, ...) are stored and shown by inspect as Docker
shows them, with a Warning saying they are not enforced.
"""

from __future__ import annotations

import os
from typing import Any

from vmcontainer.engine.restart import POLICIES
from vmcontainer.errors import Conflict, InvalidParameter
from vmcontainer.vm.spec import MIN_MEMORY_MIB

MAX_VCPUS = 64

INT_FIELDS = ("CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
              "CpuCount", "CpuPercent", "KernelMemory", "KernelMemoryTCP", "MemoryReservation",
              "MemorySwap", "BlkioWeight", "IOMaximumIOps", "IOMaximumBandwidth")
STR_FIELDS = ("CpusetCpus", "CpusetMems", "CgroupParent")
NULLABLE_INT_FIELDS = ("MemorySwappiness", "PidsLimit")
BOOL_FIELDS = ("OomKillDisable",)
LIST_FIELDS = ("Ulimits", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
               "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "Devices", "DeviceCgroupRules",
               "DeviceRequests")
UPDATABLE = ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
             "MemorySwap", "MemoryReservation", "KernelMemory", "CpuRealtimePeriod",
             "CpuRealtimeRuntime", "PidsLimit")
"""What ``docker update`` changes besides Memory, NanoCpus and RestartPolicy (moby
UpdateContainer); other fields of an update body are ignored, as by Docker."""

MIN_RESERVATION_MB = 6


def defaults() -> dict[str, Any]:
    """The values Docker's inspect shows for resources nobody set."""
    out: dict[str, Any] = dict.fromkeys(INT_FIELDS, 0)
    out.update(dict.fromkeys(STR_FIELDS, ""))
    out.update(dict.fromkeys(NULLABLE_INT_FIELDS))
    out.update(dict.fromkeys(BOOL_FIELDS, False))
    out.update(dict.fromkeys(LIST_FIELDS))
    return out


def is_set(value: object) -> bool:
    return value not in (None, 0, "", False, [])


def not_enforced(given: dict[str, Any]) -> list[str]:
    """One Warning naming the fields set in ``given`` that a VM does not enforce."""
    keys = [k for k, v in given.items() if is_set(v) and k not in ("Memory", "NanoCpus")
            and not (k == "MemorySwap" and v == -1)]  # -1: no swap limit, nothing to enforce
    if not keys:
        return []
    return [f"{', '.join(keys)}: stored but not enforced by vmcontainer (a VM container's "
            "limits are its memory, HostConfig.Memory, and its vCPUs, HostConfig.NanoCpus)"]


def host_cpus() -> int:
    return min(os.cpu_count() or 1, MAX_VCPUS)


def check_size(memory: int, nano_cpus: int) -> None:
    """The VM's RAM and vCPUs (0: default). Raises InvalidParameter."""
    if memory < 0:
        raise InvalidParameter('invalid value for "HostConfig.Memory": must not be negative')
    if memory and memory < MIN_MEMORY_MIB << 20:
        raise InvalidParameter(
            f"Minimum memory limit allowed for a VM container is {MIN_MEMORY_MIB}MB")
    cpus = host_cpus()
    if nano_cpus < 0 or nano_cpus > cpus * 10**9:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {cpus}.00, as there are only "
                               f"{cpus} CPUs available")


def check_resources(rc: dict[str, Any]) -> None:
    """moby ``verifyPlatformContainerResources`` (the checks that do not depend on
    the host's cgroups), with Docker's texts. ``rc``: the resources as they will be."""
    memory, reservation = rc.get("Memory") or 0, rc.get("MemoryReservation") or 0
    swap = rc.get("MemorySwap") or 0
    check_size(memory, rc.get("NanoCpus") or 0)
    if reservation and reservation < MIN_RESERVATION_MB << 20:
        raise InvalidParameter(f"Minimum memory reservation allowed is {MIN_RESERVATION_MB}MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, "
                               "see usage")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation "
                               "limit, see usage")
    swappiness = rc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range "
                               "is 0-100")
    check_cpu_options(rc)


def check_cpu_options(rc: dict[str, Any]) -> None:
    nano, period, quota = (rc.get(k) or 0 for k in ("NanoCpus", "CpuPeriod", "CpuQuota"))
    if nano > 0 and period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                               "than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")


def check_restart_policy(name: str, retries: int) -> None:
    """moby ``validateRestartPolicy``; raises InvalidParameter with its texts."""
    if name not in POLICIES:
        raise InvalidParameter(f"invalid restart policy '{name}'")
    if retries and name != "on-failure":
        raise InvalidParameter(f"maximum retry count cannot be used with restart policy "
                               f"'{name}'")
    if retries < 0:
        raise InvalidParameter("maximum retry count cannot be negative")


def updated_host_config(cid: str, host_config: dict[str, Any], changes: dict[str, Any],
                        running: bool) -> tuple[dict[str, Any], list[str]]:
    """``host_config`` with a ``docker update`` applied, and its Warnings.

    ``changes`` holds the fields the request set (Docker: a zero value means
    "unchanged"; ``RestartPolicy`` only with a Name). Raises InvalidParameter (400)
    for invalid values and Conflict (409, ``Cannot update container <id>: ...``)
    for updates Docker refuses, and for a change of the RAM or vCPUs of a
    ``running`` VM, which cannot be resized live."""
    policy = changes.get("RestartPolicy")
    if policy is not None:
        check_restart_policy(policy["Name"], policy["MaximumRetryCount"])
    check_size(changes.get("Memory") or 0, changes.get("NanoCpus") or 0)
    reservation = changes.get("MemoryReservation") or 0
    if reservation and reservation < MIN_RESERVATION_MB << 20:
        raise InvalidParameter(f"Minimum memory reservation allowed is {MIN_RESERVATION_MB}MB")
    check_cpu_options(changes)

    def refuse(why: str) -> Conflict:
        return Conflict(f"Cannot update container {cid}: {why}")

    hc = {**defaults(), **host_config}
    if (changes.get("NanoCpus") or 0) > 0 and hc.get("CpuPeriod"):
        raise refuse("Conflicting options: Nano CPUs cannot be updated as CPU Period has "
                     "already been set")
    if (changes.get("NanoCpus") or 0) > 0 and hc.get("CpuQuota"):
        raise refuse("Conflicting options: Nano CPUs cannot be updated as CPU Quota has "
                     "already been set")
    if (changes.get("CpuPeriod") or changes.get("CpuQuota")) and hc.get("NanoCpus"):
        raise refuse("Conflicting options: CPU Quota or CPU Period cannot be updated as "
                     "NanoCPUs has already been set")
    memory = changes.get("Memory") or 0
    if memory and memory > (hc.get("MemorySwap") or 0) and not changes.get("MemorySwap"):
        raise refuse("Memory limit should be smaller than already set memoryswap limit, "
                     "update the memoryswap at the same time")
    if policy is not None and policy["Name"] != "no" and hc.get("AutoRemove"):
        raise refuse("Restart policy cannot be updated because AutoRemove is enabled for the "
                     "container")
    if running:
        for key, what in (("Memory", "memory (the VM's RAM)"),
                          ("NanoCpus", "CPUs (the VM's vCPUs)")):
            if key in changes and changes[key] != hc.get(key):
                raise refuse(f"the {what} of a running VM container cannot be changed; "
                             "stop the container, update it, then start it")
    resource_changes = {k: v for k, v in changes.items()
                        if k in ("Memory", "NanoCpus", *UPDATABLE)}
    hc.update(resource_changes)
    if policy is not None:
        hc["RestartPolicy"] = {"Name": policy["Name"],
                               "MaximumRetryCount": policy["MaximumRetryCount"]}
    return hc, not_enforced(resource_changes)
