"""Which path a container's VM takes: a template clone (warm) or a boot (cold).

Warm where it applies — the qemu backend, the daemon's ``warm_start`` setting
(``VMCONTAINER_WARM_START=0`` turns it off), a machine with a template's device
layout (``templatelayout.fits``: volumes and bind mounts included, up to a few
of each) whose template is built, and a config that fits one CONFIG frame —
cold otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.templatelayout import template_mac
from vmcontainer.engine.templates import Template, TemplatePool
from vmcontainer.guestlink.configdisk import CONFIG_VERSION
from vmcontainer.guestlink.protocol import MAX_HOST_PAYLOAD
from vmcontainer.vm.spec import DiskSpec, MachineSpec

SEED_BYTES = 64


def shm_dir(root: Path) -> Path:
    """This data root's tmpfs directory for template RAM files."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return Path("/dev/shm") / f"vmcontainer-{digest}"


def sweep_shm() -> None:
    """Remove the RAM files of data roots that no longer exist (a daemon killed
    before it could clean up, e.g. a test's)."""
    for d in Path("/dev/shm").glob("vmcontainer-*"):
        try:
            root = (d / "root").read_text()
        except OSError:
            continue
        if not Path(root).exists():
            shutil.rmtree(d, ignore_errors=True)


def pool(ctx: EngineContext) -> TemplatePool | None:
    """The context's template pool (made on first use), None when warm starts are
    off or the backend cannot clone."""
    if not ctx.settings.warm_start or ctx.backend.name != "qemu":
        return None
    if ctx.templates is None:
        sweep_shm()
        ctx.templates = TemplatePool(ctx.backend, ctx.settings.root / "templates",
                                     shm_dir(ctx.settings.root))
    return ctx.templates


def choose(ctx: EngineContext, spec: MachineSpec,
           config: dict[str, Any]) -> tuple[Template, dict[str, Any]] | None:
    """The template container machine ``spec`` clones and the config its CONFIG
    carries (``clone_config``), or None: start cold (its template, when it could
    have one, is then built in the background)."""
    p = pool(ctx)
    if p is None or not p.eligible(spec):
        return None
    t = p.get(spec)
    if t is None:
        return None
    sent = clone_config(config, spec, t)
    return (t, sent) if len(config_payload(sent)) <= MAX_HOST_PAYLOAD else None


def clone_config(config: dict[str, Any], spec: MachineSpec, t: Template) -> dict[str, Any]:
    """``config`` with, for each of its ``network.interfaces``, the MAC its NIC has
    in template ``t`` (``template_mac``): the guest has that one until the agent
    sets the container's (guest/PROTOCOL.md "Warm start"). Interfaces are matched
    to NICs by MAC, NICs to the template's by device id."""
    by_mac = {n.mac: t.nic_ids.index(n.id) for n in spec.nics if n.id in t.nic_ids}
    network = config.get("network")
    if not isinstance(network, dict):
        return config
    ifaces = [{**i, "template_mac": template_mac(by_mac[i["mac"]])} if i.get("mac") in by_mac
              else i for i in network.get("interfaces") or []]
    return {**config, "network": {**network, "interfaces": ifaces}}


def drop(ctx: EngineContext, t: Template) -> None:
    """Stop using template ``t`` (a clone of it failed to start)."""
    if ctx.templates is not None:
        ctx.templates.drop(t)


def clone_spec(spec: MachineSpec, t: Template) -> MachineSpec:
    """``spec`` as a clone of ``t``: its RAM file private, its state incoming, the
    template's placeholder in the config slot (its rootfs, volumes and shares in
    their slots, as they are)."""
    rootfs, _, *volumes = spec.disks
    config = DiskSpec(t.config_disk, "config", format="raw", readonly=True)
    return replace(spec, disks=(rootfs, config, *volumes),
                   memory_file=t.memory, memory_shared=False, incoming=t.state)


def config_payload(config: dict[str, Any]) -> bytes:
    """The CONFIG frame's payload (guest/PROTOCOL.md "Warm start"): the
    container's config with what a clone must not share with its template — a
    fresh random seed and the host's clock (ns since the epoch)."""
    fresh = {"version": CONFIG_VERSION, **config,
             "seed": os.urandom(SEED_BYTES).hex(), "clock_ns": time.time_ns()}
    return json.dumps(fresh, separators=(",", ":")).encode()
