"""Staging directories: removed after use, swept when their owner died, kept while live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmcontainer.image import ImageStore
from vmcontainer.image.staging import LOCK_NAME, staging_dir, sweep

HOLDER = """
import sys, time
from pathlib import Path
from vmcontainer.image.staging import staging_dir
with staging_dir(Path(sys.argv[1]), "load-") as d:
    (d / "big").write_bytes(b"x" * 1000)
    print(d, flush=True)
    time.sleep(60)
"""


def test_staging_dir_is_removed_after_use(tmp_path: Path) -> None:
    with staging_dir(tmp_path, "x-") as d:
        (d / "f").write_text("data")
        assert (d / LOCK_NAME).exists()
    assert not d.exists()
    with pytest.raises(RuntimeError), staging_dir(tmp_path, "x-") as d2:
        raise RuntimeError("boom")
    assert not d2.exists()


def test_sweep_removes_only_dead_owners(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    held = Path(proc.stdout.readline().strip())
    with staging_dir(tmp_path, "live-") as mine:
        assert sweep(tmp_path) == []  # both are in use: another process's and this one's
        assert held.exists() and mine.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert held.exists()  # a killed process cannot clean up
        assert sweep(tmp_path) == [held]
        assert not held.exists() and mine.exists()
    fresh = tmp_path / "load-nolock"
    fresh.mkdir()
    assert sweep(tmp_path) == []  # no lock file yet: may be being created
    old = time.time() - 7200
    os.utime(fresh, (old, old))
    assert sweep(tmp_path) == [fresh]


def test_store_sweeps_on_open(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "image")
    leftover = store.tmp_dir / "load-dead"
    leftover.mkdir()
    (leftover / LOCK_NAME).touch()
    (leftover / "layer").write_bytes(b"x" * 100)
    ImageStore(tmp_path / "image")
    assert not leftover.exists()
