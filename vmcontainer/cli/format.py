"""Docker CLI's human formats: durations ("5 seconds ago"), ps status and command
columns (docker/cli cli/command/formatter, go-units HumanDuration)."""

from __future__ import annotations

from vmcontainer.engine.container import Container
from vmcontainer.engine.humanize import human_duration, parse_time, ps_status, since

__all__ = ["human_duration", "parse_time", "ps_command", "ps_status", "since", "table"]


def ps_command(c: Container, trunc: bool = True) -> str:
    cmd = " ".join([c.path, *c.args])
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns separated by three spaces, as docker's tabwriter."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join(lines)
