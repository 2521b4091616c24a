"""Container state: one Enum plus a transition table (after moby's container/state.go).

JSON field names are Docker's (Engine API v1.45, ContainerInspect ``State``).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from vmcontainer.errors import Conflict

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    """Current UTC time in Docker's RFC 3339 form with nanoseconds."""
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


class Status(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


# status -> the statuses it may move to
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.RUNNING, Status.EXITED, Status.REMOVING, Status.DEAD}),
    Status.RUNNING: frozenset({Status.EXITED, Status.PAUSED, Status.RESTARTING, Status.DEAD}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.EXITED, Status.DEAD}),
    Status.RESTARTING: frozenset({Status.RUNNING, Status.EXITED, Status.DEAD}),
    Status.EXITED: frozenset({Status.RUNNING, Status.REMOVING, Status.RESTARTING, Status.DEAD}),
    Status.REMOVING: frozenset({Status.DEAD, Status.EXITED}),
    Status.DEAD: frozenset({Status.REMOVING}),
}


@dataclass(frozen=True)
class State:
    """A container's state; ``to_docker()`` gives Docker's ``State`` object."""

    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: dict[str, Any] | None = None  # Docker's State.Health when a check is set

    def move(self, status: Status, **changes: Any) -> State:
        """A new State in ``status``; raises Conflict for a transition the table
        does not allow."""
        if status != self.status and status not in TRANSITIONS[self.status]:
            raise Conflict(f"cannot move container from {self.status} to {status}")
        return replace(self, status=status, **changes)

    @property
    def running(self) -> bool:
        return self.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def to_docker(self) -> dict[str, Any]:
        return {
            "Status": str(self.status),
            "Running": self.running,
            "Paused": self.status == Status.PAUSED,
            "Restarting": self.status == Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status == Status.DEAD,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
            **({"Health": self.health} if self.health is not None else {}),
        }

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        return cls(**{**d, "status": Status(d["status"])})
