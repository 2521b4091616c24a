"""``docker top`` formatting of the agent's PROCESSES answer."""

from __future__ import annotations

import time

import pytest

from vmcontainer.engine.top import check_ps_args, ps_ef
from vmcontainer.errors import InvalidParameter


def test_ps_ef_rows() -> None:
    now = time.mktime((2026, 11, 29, 12, 0, 0, 0, 0, -1))
    answer = {"clk_tck": 100, "uptime_ms": 3_600_000, "processes": [
        {"pid": 7, "ppid": 1, "uid": 0, "tty": 0, "start_ticks": 100, "cpu_ticks": 250,
         "comm": "sleep", "cmdline": ["sleep", "300"]},
        {"pid": 9, "ppid": 7, "uid": 65534, "tty": (136 << 8) | 0, "start_ticks": 360_000,
         "cpu_ticks": 0, "comm": "sh", "cmdline": []},
    ]}
    out = ps_ef(answer, now)
    assert out["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert out["Processes"][0] == ["root", "7", "1", "0", "11:00", "?", "00:00:02",
                                   "sleep 300"]
    assert out["Processes"][1][:3] == ["65534", "9", "7"]
    assert out["Processes"][1][5:] == ["pts/0", "00:00:00", "[sh]"]


def test_ps_args() -> None:
    check_ps_args("-ef")
    check_ps_args("")
    with pytest.raises(InvalidParameter, match="not supported"):
        check_ps_args("aux")
