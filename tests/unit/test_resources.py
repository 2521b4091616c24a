"""``docker update`` on a HostConfig (engine/resources.py), as Docker 20.10 answers."""

from __future__ import annotations

import pytest

from vmcontainer.engine.resources import updated_host_config
from vmcontainer.errors import Conflict, InvalidParameter

HC = {"Memory": 256 << 20, "MemorySwap": 512 << 20, "NanoCpus": 0, "AutoRemove": False,
      "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}}


def test_zero_means_unchanged_and_policy_replaced() -> None:
    hc, warnings = updated_host_config("c", HC, {"RestartPolicy": {
        "Name": "on-failure", "MaximumRetryCount": 2}, "CpuShares": 512}, running=True)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert (hc["Memory"], hc["CpuShares"]) == (256 << 20, 512)
    assert len(warnings) == 1 and "CpuShares" in warnings[0]


def test_running_vm_cannot_resize_stopped_can() -> None:
    with pytest.raises(Conflict, match=r"^Cannot update container c: the memory"):
        updated_host_config("c", HC, {"Memory": 128 << 20}, running=True)
    with pytest.raises(Conflict, match="CPUs"):
        updated_host_config("c", HC, {"NanoCpus": 10**9}, running=True)
    hc, warnings = updated_host_config("c", HC, {"Memory": 128 << 20, "NanoCpus": 10**9},
                                       running=False)
    assert (hc["Memory"], hc["NanoCpus"], warnings) == (128 << 20, 10**9, [])


def test_docker_refusals() -> None:
    with pytest.raises(Conflict, match="update the memoryswap at the same time"):
        updated_host_config("c", HC, {"Memory": 1 << 30}, running=False)
    with pytest.raises(Conflict, match="AutoRemove is enabled"):
        updated_host_config("c", {**HC, "AutoRemove": True},
                            {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}},
                            running=False)
    with pytest.raises(InvalidParameter, match="invalid restart policy 'x'"):
        updated_host_config("c", HC, {"RestartPolicy": {"Name": "x", "MaximumRetryCount": 0}},
                            running=False)
