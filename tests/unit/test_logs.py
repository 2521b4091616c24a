from __future__ import annotations

import json
from pathlib import Path

from vmcontainer.engine.logs import MAX_LINE, JsonFileWriter, read_log, read_stored


def test_json_file_lines_split_at_newlines_and_16k(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = JsonFileWriter(path)
    w.write("stdout", b"hel")
    w.write("stdout", b"lo\nwor")
    w.write("stderr", b"err\n")
    w.write("stdout", b"x" * (MAX_LINE + 10))
    w.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["log"] == "hello\n" and lines[0]["stream"] == "stdout"
    assert lines[1] == {**lines[1], "log": "err\n", "stream": "stderr"}
    assert lines[0]["time"].endswith("Z")
    data = b"".join(e.data for e in read_log(path) if e.stream == "stdout")
    assert data == b"hello\nwor" + b"x" * (MAX_LINE + 10)
    assert max(len(e.data) for e in read_log(path)) <= MAX_LINE


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text('{"log":"a\\n","stream":"stdout","time":"t"}\n{"log":"b')
    assert [e.data for e in read_log(path)] == [b"a\n"]


def test_stored_counts_whole_entries_and_survive_a_restart(tmp_path: Path) -> None:
    """What the host acknowledges to the agent: bytes in the log as whole entries
    (a partial line is not stored until its newline or close), recorded beside
    the log after each write; a resuming writer goes on from them, a new run
    starts at 0."""
    log, stored = tmp_path / "c-json.log", tmp_path / "c-json.log.stored"
    w = JsonFileWriter(log, stored)
    w.write("stdout", b"one\ntw")
    w.write("stderr", "é\n".encode())
    assert w.stored == read_stored(stored) == (4, 3)
    # the daemon dies here (no close): the partial "tw" is not in the log
    resumed = JsonFileWriter(log, stored, resume=True)
    assert resumed.stored == (4, 3)
    resumed.write("stdout", b"two\n")
    resumed.close()
    assert read_stored(stored) == (8, 3)
    assert [e.data for e in read_log(log)] == [b"one\n", "é\n".encode(), b"two\n"]
    assert JsonFileWriter(log, stored).stored == read_stored(stored) == (0, 0)
    stored.write_text("garbage")
    assert read_stored(stored) == (0, 0) and read_stored(tmp_path / "missing") == (0, 0)
