from __future__ import annotations

import pytest

from vmcontainer.engine.process import (
    DEFAULT_PATH,
    check_working_dir,
    container_env,
    merge_env,
    process_env,
    resolve_command,
)
from vmcontainer.errors import InvalidParameter


def test_cmd_replaces_image_cmd_and_keeps_entrypoint() -> None:
    assert resolve_command(["/ep"], ["a"], None, ["b"]) == ["/ep", "b"]
    assert resolve_command(["/ep"], ["a"], None, None) == ["/ep", "a"]


def test_explicit_entrypoint_drops_image_cmd() -> None:
    assert resolve_command(["/ep"], ["a"], ["sh"], None) == ["sh"]
    assert resolve_command(None, ["a"], ["sh"], ["-c", "x"]) == ["sh", "-c", "x"]


def test_empty_entrypoint_resets_it() -> None:
    assert resolve_command(["/ep"], ["a"], [""], ["ls"]) == ["ls"]


def test_nothing_to_run_is_docker_error() -> None:
    with pytest.raises(InvalidParameter, match="No command specified"):
        resolve_command(None, None, None, None)


def test_env_merge_replaces_in_place_and_appends() -> None:
    assert merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == ["A=1", "B=3", "C=4"]
    assert merge_env(["A=1", "B=2"], ["A"]) == ["B=2"]


def test_process_env_order_matches_docker() -> None:
    env = process_env(container_env(["PATH=/x"], ["FOO=bar"]), "abc")
    assert env == ["PATH=/x", "HOSTNAME=abc", "FOO=bar"]
    assert process_env([], "h")[0] == DEFAULT_PATH
    assert "TERM=xterm" in process_env([], "h", tty=True)


def test_relative_workdir_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="needs to be an absolute path"):
        check_working_dir("tmp")
    assert check_working_dir("/tmp") == "/tmp"


def test_config_env_as_docker_records_it() -> None:
    """moby ``merge``: the request's items as given (bare ``KEY`` kept), then the
    image's not named; the process env leaves bare items out."""
    env = container_env(["PATH=/x", "B=2", "A=1"], ["Foo", "B=3", "C=4"])
    assert env == ["Foo", "B=3", "C=4", "PATH=/x", "A=1"]
    assert container_env(["PATH=/x"], []) == ["PATH=/x"]
    assert "Foo" not in process_env(env, "h") and "B=3" in process_env(env, "h")
