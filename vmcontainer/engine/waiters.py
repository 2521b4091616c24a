"""``docker wait``'s waiters (Engine API v1.45, ContainerWait): futures per
container and condition, resolved by the engine as containers exit and go away.

Conditions (moby container.WaitCondition): ``not-running`` (now, if the
container is not running; else at its exit), ``next-exit`` (at its next exit),
``removed`` (when it is removed). Each resolves to ``{"StatusCode": n, "Error":
None}``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from vmcontainer.errors import InvalidParameter

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def wait_result(code: int) -> dict[str, Any]:
    """The ContainerWait response for exit code ``code``."""
    return {"StatusCode": code, "Error": None}


class Waiters:
    """Pending waits, by container ID."""

    def __init__(self) -> None:
        self._pending: dict[str, list[tuple[str, asyncio.Future[dict[str, Any]]]]] = (
            defaultdict(list))

    def add(self, cid: str, condition: str, running: bool,
            exit_code: int) -> asyncio.Future[dict[str, Any]]:
        """A future for ``condition`` on container ``cid`` (``running``: whether it
        runs now; ``exit_code``: its last). Raises InvalidParameter for an unknown
        condition, with moby's text."""
        if condition not in WAIT_CONDITIONS:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if condition == "not-running" and not running:
            fut.set_result(wait_result(exit_code))
        else:
            self._pending[cid].append((condition, fut))
        return fut

    def resolve(self, cid: str, conditions: tuple[str, ...], code: int) -> None:
        """Resolve ``cid``'s waits on any of ``conditions`` with exit code ``code``."""
        keep = []
        for cond, fut in self._pending.pop(cid, []):
            if cond in conditions:
                if not fut.done():
                    fut.set_result(wait_result(code))
            else:
                keep.append((cond, fut))
        if keep:
            self._pending[cid] = keep
