"""Health checks: the container's HEALTHCHECK run through exec in its VM, on moby's
schedule and rules (moby ``daemon/health.go``).

- Test ``["CMD", args...]`` runs args; ``["CMD-SHELL", cmd]`` runs ``/bin/sh -c
  cmd``; ``["NONE"]`` or no test: no checks.
- First probe after Interval (default 30 s; StartInterval, default 5 s, during
  StartPeriod), each limited to Timeout (default 30 s: then exit code -1 and
  moby's "Health check exceeded timeout" output).
- Exit 0: ``healthy``, FailingStreak 0. Otherwise FailingStreak + 1 and, once it
  reaches Retries (default 3), ``unhealthy`` — except that failures inside
  StartPeriod do not count while the container was never healthy.
- State.Health keeps the last 5 probes (Start, End, ExitCode, Output cut to 4096
  bytes); every status change publishes ``health_status: <status>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.execs import ExecManager
from vmcontainer.errors import ContainerNotFound, VmcError

log = logging.getLogger(__name__)

NS = 1_000_000_000
DEFAULT_INTERVAL_NS = 30 * NS
DEFAULT_TIMEOUT_NS = 30 * NS
DEFAULT_START_INTERVAL_NS = 5 * NS
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_LEN = 4096

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"

Publish = Callable[[str, Container], None]


def probe_command(test: list[str]) -> list[str] | None:
    """The argv of a HealthConfig Test; None when checks are off."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])] if len(test) > 1 else None
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def record(health: dict[str, Any] | None, start: str, exit_code: int, output: str,
           retries: int, in_start_period: bool) -> dict[str, Any]:
    """The new State.Health after one probe (pure: moby's ``handleProbeResult``)."""
    h = dict(health or {"Status": STARTING, "FailingStreak": 0, "Log": []})
    entry = {"Start": start, "End": _now(), "ExitCode": exit_code,
             "Output": output[:MAX_OUTPUT_LEN]}
    h["Log"] = [*(h.get("Log") or []), entry][-MAX_LOG_ENTRIES:]
    if exit_code == 0:
        h["FailingStreak"] = 0
        h["Status"] = HEALTHY
    elif in_start_period and h.get("Status") != HEALTHY:
        pass  # failures in the start period do not count (moby)
    else:
        h["FailingStreak"] = int(h.get("FailingStreak") or 0) + 1
        if h["FailingStreak"] >= retries:
            h["Status"] = UNHEALTHY
    return h


class HealthMonitor:
    """One probe loop per running container that has a health check."""

    def __init__(self, ctx: EngineContext, execs: ExecManager, publish: Publish) -> None:
        self._ctx = ctx
        self._execs = execs
        self._publish = publish
        self._loops: dict[str, asyncio.Task[None]] = {}

    def watch(self, c: Container) -> None:
        """Start probing ``c`` (just started); resets State.Health to starting."""
        hc = c.config.get("Healthcheck") or {}
        argv = probe_command(list(hc.get("Test") or []))
        self.stop(c.id)
        if argv is None:
            return
        self._set(c.id, {"Status": STARTING, "FailingStreak": 0, "Log": []})
        self._loops[c.id] = asyncio.ensure_future(self._loop(c.id, argv, hc))

    def stop(self, cid: str) -> None:
        task = self._loops.pop(cid, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._loops.values())
        for task in tasks:
            task.cancel()
        self._loops.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _set(self, cid: str, health: dict[str, Any]) -> Container:
        c = self._ctx.store.load(cid)
        return self._ctx.update(cid, state=replace(c.state, health=health))

    async def _loop(self, cid: str, argv: list[str], hc: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        interval = (hc.get("Interval") or DEFAULT_INTERVAL_NS) / NS
        start_interval = (hc.get("StartInterval") or DEFAULT_START_INTERVAL_NS) / NS
        timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT_NS) / NS
        start_period = (hc.get("StartPeriod") or 0) / NS
        retries = int(hc.get("Retries") or DEFAULT_RETRIES)
        began = loop.time()
        while True:
            in_start = loop.time() - began < start_period
            await asyncio.sleep(start_interval if in_start else interval)
            in_start = loop.time() - began < start_period
            start = _now()
            try:
                code, output = await self._probe(cid, argv, timeout)
            except ContainerNotFound:
                return
            except VmcError as err:  # the container stopped under the probe
                log.debug("health probe of %s: %s", cid[:12], err)
                return
            try:
                c = self._ctx.store.load(cid)
            except ContainerNotFound:
                return
            if not c.state.running:
                return
            old = (c.state.health or {}).get("Status")
            health = record(c.state.health, start, code, output, retries, in_start)
            c = self._set(cid, health)
            if health["Status"] != old:
                self._publish(f"health_status: {health['Status']}", c)

    async def _probe(self, cid: str, argv: list[str], timeout: float) -> tuple[int, str]:
        c = self._ctx.store.load(cid)
        inst = self._execs.create(c, {"Cmd": argv, "Env": [], "AttachStdout": True,
                                      "AttachStderr": True})
        chunks: list[bytes] = []

        async def run() -> None:
            started = await self._execs.start(inst, c)
            async for _stream, data in started.output():
                if sum(map(len, chunks)) < MAX_OUTPUT_LEN:
                    chunks.append(data)

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            if inst.handle is not None:
                with contextlib.suppress(VmcError):
                    await inst.handle.kill()
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        except VmcError as err:
            if inst.exit_code is None:
                raise
            return inst.exit_code, str(err)
        return int(inst.exit_code if inst.exit_code is not None else -1), \
            b"".join(chunks).decode(errors="replace")

