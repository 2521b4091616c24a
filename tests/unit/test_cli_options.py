from __future__ import annotations

from pathlib import Path

import pytest

from vmcontainer.cli.format import human_duration
from vmcontainer.cli.options import env_item, nano_cpus, parse_env_file, ram_in_bytes
from vmcontainer.engine.names import random_name, validate_name
from vmcontainer.errors import InvalidParameter


def test_sizes_and_cpus() -> None:
    assert ram_in_bytes("256m") == 256 << 20
    assert ram_in_bytes("1g") == 1 << 30
    assert ram_in_bytes("1024") == 1024
    assert nano_cpus("1.5") == 1_500_000_000
    with pytest.raises(InvalidParameter):
        ram_in_bytes("lots")
    with pytest.raises(InvalidParameter):
        nano_cpus("two")


def test_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    f = tmp_path / "env"
    f.write_text("# comment\n\n  A=1\nB=x=y\nFROM_HOST\nUNSET_ONE\n")
    assert parse_env_file(f) == ["A=1", "B=x=y", "FROM_HOST=h"]
    f.write_text("BAD KEY=1\n")
    with pytest.raises(InvalidParameter, match="contains whitespaces"):
        parse_env_file(f)
    assert env_item("K=v") == "K=v"


def test_names() -> None:
    assert validate_name("/web.1") == "web.1"
    for bad in ("-x", "a", "a b", "x/y", "é"):
        with pytest.raises(InvalidParameter, match="Invalid container name"):
            validate_name(bad)
    validate_name(random_name())


def test_human_duration() -> None:
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(5) == "5 seconds"
    assert human_duration(90) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"

