from __future__ import annotations

import json
from pathlib import Path

from vmcontainer.engine.logs import MAX_LINE, JsonFileWriter, read_log


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
