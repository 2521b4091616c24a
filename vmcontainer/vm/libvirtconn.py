"""One libvirt connection for the daemon, with its event thread: libvirt delivers
domain lifecycle events (a domain stopped, crashed, was destroyed by someone else)
to callbacks run by ``virEventRunDefaultImpl``, which this module runs in one thread
and hands over to the asyncio loop. libvirt requires the event implementation to be
registered once per process before any connection is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from vmcontainer.errors import Unavailable

log = logging.getLogger(__name__)

_EVENT_IMPL = threading.Lock()
_event_thread: threading.Thread | None = None

# Called on the asyncio loop as (event, detail) for the domain's UUID string.
Listener = Callable[[int, int], None]


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as err:
        raise Unavailable("the libvirt backend needs libvirt-python: pip install "
                          "'vmcontainer[libvirt]' (Debian: libvirt-dev, pkg-config)") from err
    return libvirt


def _ensure_event_thread(libvirt: Any) -> None:
    """Register libvirt's default event loop and run it in a daemon thread (once per
    process: libvirt offers no way to unregister it)."""
    global _event_thread
    with _EVENT_IMPL:
        if _event_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        # libvirt prints every error to stderr besides raising it; the callers decide.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                if libvirt.virEventRunDefaultImpl() < 0:
                    log.warning("libvirt event loop iteration failed")

        _event_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _event_thread.start()


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names a hypervisor on another host (a host part: ``qemu+ssh://
    user@host/system``, ``qemu+tcp://127.0.0.1/system``) — files must then be placed
    there through the storage API, and sockets there are not reachable here."""
    return bool(urlsplit(uri).hostname)


class Connection:
    """``conn``: the virConnect; domain lifecycle events reach ``listen``ers on the
    loop that opened it."""

    def __init__(self, uri: str, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.uri = uri
        self.conn = conn
        self._loop = loop
        self._listeners: dict[str, Listener] = {}
        self._early: dict[str, tuple[int, int]] = {}
        self._callback_id = conn.domainEventRegisterAny(
            None, _libvirt().VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)

    @classmethod
    async def open(cls, uri: str) -> Connection:
        """Open ``uri``; raises Unavailable when libvirt-python is missing or libvirtd
        does not answer."""
        libvirt = _libvirt()
        _ensure_event_thread(libvirt)
        if urlsplit(uri).scheme.endswith("+libssh"):
            log.warning("libvirt's libssh transport hangs or crashes in "
                        "virDomainOpenChannel (libvirt 9.0); use qemu+ssh:// instead of %s",
                        uri.split("?")[0])
        try:
            conn = await asyncio.to_thread(libvirt.open, uri)
            if is_remote(uri):
                conn.setKeepAlive(5, 3)
        except libvirt.libvirtError as err:
            raise Unavailable(f"cannot connect to libvirt at {uri}: "
                              f"{err.get_error_message()}") from err
        return cls(uri, conn, asyncio.get_running_loop())

    async def offers_kvm(self) -> bool:
        """Whether the host's libvirt offers KVM domains (its /dev/kvm is usable)."""
        try:
            await asyncio.to_thread(self.conn.getDomainCapabilities, None, "x86_64",
                                    "q35", "kvm", 0)
            return True
        except _libvirt().libvirtError:
            return False

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, detail: int,
                      _opaque: Any) -> None:
        """In the event thread: pass the event to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(self._dispatch, dom.UUIDString(), event, detail)

    def _dispatch(self, uuid: str, event: int, detail: int) -> None:
        listener = self._listeners.get(uuid)
        if listener is not None:
            listener(event, detail)
        elif event == _libvirt().VIR_DOMAIN_EVENT_STOPPED:
            # A domain that ended before its machine listened (a fast guest): kept
            # for ``listen``; bounded, since most are other programs' domains.
            self._early[uuid] = (event, detail)
            while len(self._early) > 256:
                self._early.pop(next(iter(self._early)))

    def listen(self, uuid: str, listener: Listener) -> None:
        """Call ``listener`` with each lifecycle event of domain ``uuid`` (a STOPPED
        event that came before this call is delivered at once)."""
        self._listeners[uuid] = listener
        early = self._early.pop(uuid, None)
        if early is not None:
            listener(*early)

    def unlisten(self, uuid: str) -> None:
        self._listeners.pop(uuid, None)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.domainEventDeregisterAny(self._callback_id)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.conn.close)
