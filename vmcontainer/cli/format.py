"""Docker CLI's human formats: durations ("5 seconds ago") and tables
(docker/cli cli/command/formatter, go-units HumanDuration)."""

from __future__ import annotations

from vmcontainer.engine.humanize import human_duration

__all__ = ["human_duration", "table"]


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns separated by three spaces, as docker's tabwriter."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join(lines)
