"""Health-check rules (moby daemon/health.go), the pure part."""

from __future__ import annotations

from vmcontainer.engine.health import probe_command, record


def test_probe_command() -> None:
    assert probe_command(["CMD", "true", "x"]) == ["true", "x"]
    assert probe_command(["CMD-SHELL", "test -f /ok"]) == ["/bin/sh", "-c", "test -f /ok"]
    assert probe_command(["NONE"]) is None
    assert probe_command([]) is None


def test_streak_and_status() -> None:
    h = record(None, "t0", 0, "ok", retries=2, in_start_period=False)
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)
    h = record(h, "t1", 1, "no", retries=2, in_start_period=False)
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 1)
    h = record(h, "t2", 1, "no", retries=2, in_start_period=False)
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 2)
    assert [e["Start"] for e in h["Log"]] == ["t0", "t1", "t2"]


def test_start_period_failures_do_not_count() -> None:
    h = record(None, "t", 1, "", retries=1, in_start_period=True)
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
    h = record(h, "t", 1, "", retries=1, in_start_period=False)
    assert h["Status"] == "unhealthy"


def test_log_keeps_five_and_cuts_output() -> None:
    h = None
    for i in range(7):
        h = record(h, str(i), 0, "x" * 5000, retries=3, in_start_period=False)
    assert h is not None
    assert [e["Start"] for e in h["Log"]] == ["2", "3", "4", "5", "6"]
    assert len(h["Log"][-1]["Output"]) == 4096
