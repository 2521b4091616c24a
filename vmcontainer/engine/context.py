"""EngineContext: the parts one engine works with, built once and passed down
(no global state): settings, the container store, the image store, the backend."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vmcontainer.config import Settings
from vmcontainer.engine.container import Container
from vmcontainer.engine.store import ContainerStore
from vmcontainer.engine.templates import TemplatePool
from vmcontainer.errors import System
from vmcontainer.image.registry import RegistryPolicy
from vmcontainer.image.store import ImageStore
from vmcontainer.network.bridge import BridgeNetworks
from vmcontainer.network.proxy import ProxySet
from vmcontainer.vm.backend import Backend
from vmcontainer.vm.bootassets import BootAssets, Progress, ensure_boot_assets
from vmcontainer.volume.store import VolumeStore


class EngineContext:
    """``networks`` is None in user-mode networking; ``backend`` may be set later
    (choosing it may probe KVM: see ``vmcontainer.vm.accel``); boot assets are
    built on first use, reporting to ``progress``."""

    def __init__(self, settings: Settings, backend: Backend | None = None,
                 assets: BootAssets | None = None, progress: Progress | None = None) -> None:
        self.settings = settings
        self.store = ContainerStore(settings.containers_dir)
        self.images = ImageStore(
            settings.image_dir,
            registries=RegistryPolicy.from_config(settings.insecure_registries,
                                                  settings.registry_certs_dir,
                                                  settings.registry_mirrors))
        self.volumes = VolumeStore(settings.volumes_dir)
        self.networks = (BridgeNetworks(settings.network_dir)
                         if settings.network_driver == "bridge" else None)
        self.proxies: dict[str, ProxySet] = {}  # container ID → its published ports
        self._backend: Backend | None = None
        if backend is not None:
            self.backend = backend
        self._assets = assets
        self._progress = progress
        self.templates: TemplatePool | None = None  # vmcontainer.engine.warm.pool

    @property
    def backend(self) -> Backend:
        """The backend VMs start on; raises System when none was set."""
        if self._backend is None:
            raise System("no VM backend configured")
        return self._backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        self._backend = backend
        self.store.vm_alive = lambda c: backend.alive(f"vmc-{c.short_id}", c.id, c.state.pid)

    def boot_assets(self) -> BootAssets:
        if self._assets is None:
            self._assets = ensure_boot_assets(self.settings.boot_dir, self._progress)
        return self._assets

    def update(self, cid: str, **changes: Any) -> Container:
        """Load, change and atomically save one record; returns the new record."""
        c = replace(self.store.load(cid), **changes)
        self.store.save(c)
        return c
