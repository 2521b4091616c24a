"""Docker's human wording of times and states: "5 seconds ago", "Up 3 minutes",
"Exited (0) 2 hours ago" (go-units HumanDuration; moby container/state.go String)."""

from __future__ import annotations

from datetime import UTC, datetime

from vmcontainer.engine.container import Container
from vmcontainer.engine.state import Status


def parse_time(rfc3339: str) -> datetime:
    """Parse Docker's RFC 3339 nano timestamps (nanoseconds cut to microseconds)."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def since(rfc3339: str) -> float:
    return (datetime.now(UTC) - parse_time(rfc3339)).total_seconds()


def ps_status(c: Container) -> str:
    st = c.state
    if st.status == Status.RUNNING:
        health = (st.health or {}).get("Status")
        suffix = {"starting": " (health: starting)", "healthy": " (healthy)",
                  "unhealthy": " (unhealthy)"}.get(health or "", "")
        return f"Up {human_duration(since(st.started_at))}{suffix}"
    if st.status == Status.PAUSED:
        return f"Up {human_duration(since(st.started_at))} (Paused)"
    if st.status == Status.EXITED:
        return f"Exited ({st.exit_code}) {human_duration(since(st.finished_at))} ago"
    if st.status == Status.RESTARTING:
        return f"Restarting ({st.exit_code}) {human_duration(since(st.finished_at))} ago"
    return st.status.capitalize()
