"""``docker update`` (POST /containers/{id}/update), websocket attach
(GET /containers/{id}/attach/ws) and create-body fields docker-py's suite sends
(Env items without ``=``, LogConfig options, GroupAdd input, resource fields), each as the
reference Docker 20.10 answers them."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import websocket
from apihelpers import Daemon

pytestmark = pytest.mark.vm


def cli(d: Daemon, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=timeout)


def inspect(d: Daemon, ref: str) -> dict[str, Any]:
    r = d.request("GET", f"/containers/{ref}/json")
    assert r.status == 200, r.body
    doc: dict[str, Any] = json.loads(r.body)
    return doc


def create(d: Daemon, name: str, cmd: list[str], **extra: Any) -> str:
    r = d.post_json(f"/containers/create?name={name}", {"Image": "busybox", "Cmd": cmd,
                                                         **extra})
    assert r.status == 201, r.body
    cid: str = json.loads(r.body)["Id"]
    return cid


def wait_for(pred: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


class UnixWsClient(docker.APIClient):
    """docker-py's ``attach_socket(ws=True)`` builds a ``ws://`` URL from its base
    URL, which for a unix socket is ``http+docker://``: connect the websocket over
    the daemon's socket instead (the rest is docker-py's own code)."""

    def __init__(self, sock: str) -> None:
        super().__init__(base_url=f"unix://{sock}", timeout=120)
        self.sock_path = sock

    def _create_websocket_connection(self, url: str) -> websocket.WebSocket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock_path)
        url = url.replace("http+docker://localhost", "ws://localhost", 1)
        return websocket.create_connection(url, socket=s, timeout=120)


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[UnixWsClient]:
    c = UnixWsClient(str(daemon.sock))
    yield c
    c.close()


# -- docker update ----------------------------------------------------------------


def test_cli_update_restart_policy_and_errors(daemon: Daemon, name: str) -> None:
    create(daemon, name, ["true"])
    r = cli(daemon, "update", "--restart", "always", name)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, name, "")
    assert inspect(daemon, name)["HostConfig"]["RestartPolicy"] == {
        "Name": "always", "MaximumRetryCount": 0}
    r = cli(daemon, "update", "--restart", "on-failure:3", name)
    assert r.returncode == 0, r.stderr
    assert inspect(daemon, name)["HostConfig"]["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 3}
    # Docker's texts and statuses (checked on Docker 20.10)
    for body, status, message in (
            ({"RestartPolicy": {"Name": "bogus"}}, 400, "invalid restart policy 'bogus'"),
            ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}, 400,
             "maximum retry count cannot be used with restart policy 'always'"),
            ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}, 400,
             "maximum retry count cannot be negative"),
            ({"Memory": 1}, 400, "Minimum memory limit allowed for a VM container is 64MB"),
            ({"Memory": "x"}, 400, 'invalid value for "Memory": expected an integer, got '
                                   "string"),
            ({"RestartPolicy": "always"}, 400, 'invalid value for "RestartPolicy": expected '
                                               "a JSON object, got string"),
            ({"PidsLimit": True}, 400, 'invalid value for "PidsLimit"'),
            ([], 400, "the body must be a JSON object")):
        r = daemon.post_json(f"/containers/{name}/update", body)
        assert r.status == status and message in json.loads(r.body)["message"], (body, r.body)
    r = daemon.post_json("/containers/nosuchone/update", {})
    assert (r.status, json.loads(r.body)["message"]) == (404, "No such container: nosuchone")
    r = cli(daemon, "update", "--restart", "always", "nosuchone")
    assert r.returncode == 1 and "No such container: nosuchone" in r.stderr
    r = cli(daemon, "update", "--cpu-shares", "512", "-m", "128m", "--memory-swap", "-1", name)
    assert r.returncode == 0 and "CpuShares: stored but not enforced" in r.stdout, r  # CLI: stdout
    hc = inspect(daemon, name)["HostConfig"]
    assert (hc["CpuShares"], hc["Memory"], hc["PidsLimit"]) == (512, 128 << 20, None)


def test_update_autoremove_conflict(daemon: Daemon, name: str) -> None:
    cid = create(daemon, name, ["true"], HostConfig={"AutoRemove": True})
    r = daemon.post_json(f"/containers/{name}/update", {"RestartPolicy": {"Name": "always"}})
    assert r.status == 409
    assert json.loads(r.body)["message"] == (
        f"Cannot update container {cid}: Restart policy cannot be updated because "
        "AutoRemove is enabled for the container")
    r = daemon.post_json(f"/containers/{name}/update", {"RestartPolicy": {"Name": "no"}})
    assert r.status == 200, r.body


def test_update_stopped_resources_apply_at_next_start(daemon: Daemon, name: str) -> None:
    cid = create(daemon, name, ["true"])
    # Docker: a memory limit above the (unset) memoryswap limit needs MemorySwap too
    r = daemon.post_json(f"/containers/{name}/update", {"Memory": 128 << 20})
    assert r.status == 409
    assert json.loads(r.body)["message"] == (
        f"Cannot update container {cid}: Memory limit should be smaller than already set "
        "memoryswap limit, update the memoryswap at the same time")
    r = daemon.post_json(f"/containers/{name}/update",
                         {"Memory": 128 << 20, "MemorySwap": -1, "CpuShares": 512,
                          "MemoryReservation": 64 << 20, "BlkioWeight": 300})
    assert r.status == 200, r.body
    warnings = json.loads(r.body)["Warnings"]
    assert len(warnings) == 1 and "CpuShares" in warnings[0] and "BlkioWeight" in warnings[0]
    assert "not enforced" in warnings[0]
    hc = inspect(daemon, name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["CpuShares"], hc["MemoryReservation"],
            hc["BlkioWeight"]) == (128 << 20, -1, 512, 64 << 20, 300)
    r = daemon.post_json(f"/containers/{name}/update", {"CpuShares": 0})  # 0: unchanged
    assert (r.status, json.loads(r.body)) == (200, {"Warnings": None})
    assert inspect(daemon, name)["HostConfig"]["CpuShares"] == 512
    assert daemon.request("POST", f"/containers/{name}/start").status == 204
    assert daemon.request("POST", f"/containers/{name}/wait").status == 200
    assert inspect(daemon, name)["VM"]["MemoryMiB"] == 128


def test_update_running_refuses_resize_takes_new_policy(daemon: Daemon, name: str) -> None:
    """A running VM cannot change RAM or vCPUs (409, as Docker's refused updates);
    its restart policy changes at once and the restart manager follows it."""
    cid = create(daemon, name, ["sh", "-c", "sleep 4; exit 3"],
                 HostConfig={"Memory": 256 << 20})
    assert daemon.request("POST", f"/containers/{name}/start").status == 204
    try:
        for body, what in (({"Memory": 128 << 20}, "memory (the VM's RAM)"),
                           ({"NanoCpus": 2 * 10**9}, "CPUs (the VM's vCPUs)")):
            r = daemon.post_json(f"/containers/{name}/update", body)
            assert r.status == 409, r.body
            assert json.loads(r.body)["message"] == (
                f"Cannot update container {cid}: the {what} of a running VM container "
                "cannot be changed; stop the container, update it, then start it")
        r = daemon.post_json(f"/containers/{name}/update", {"Memory": 256 << 20})
        assert r.status == 200, r.body  # unchanged: nothing to refuse
        r = daemon.post_json(f"/containers/{name}/update",
                             {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 1}})
        assert r.status == 200, r.body
        wait_for(lambda: inspect(daemon, name)["RestartCount"] == 1)
        wait_for(lambda: inspect(daemon, name)["State"]["Status"] == "exited", 120)
        doc = inspect(daemon, name)
        assert (doc["RestartCount"], doc["State"]["ExitCode"]) == (1, 3)
        assert doc["HostConfig"]["Memory"] == 256 << 20
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def test_docker_py_update_container(api: UnixWsClient, daemon: Daemon, name: str) -> None:
    c = api.create_container("busybox", "true", name=name,
                             host_config=api.create_host_config(mem_limit=400 << 20))
    policy = {"Name": "on-failure", "MaximumRetryCount": 42}
    result = api.update_container(c, mem_limit=300 << 20, restart_policy=policy)
    assert result == {"Warnings": None}
    hc = api.inspect_container(c)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["RestartPolicy"]) == (
        300 << 20, 800 << 20, policy)
    events = daemon.request("GET", f'/events?since=0&until={int(time.time()) + 1}'
                            f'&filters={{"container":["{name}"],"event":["update"]}}')
    assert events.body.count(b'"update"') >= 1


# -- attach over a websocket --------------------------------------------------------


def test_attach_ws_output_raw_binary(api: UnixWsClient, name: str) -> None:
    line = "hi there and stuff and things, words!"
    c = api.create_container("busybox", f"sh -c \"printf '{line}'; printf e >&2\"",
                             name=name, detach=True, tty=False)
    ws = api.attach_socket(c, {"stdout": 1, "stderr": 1, "stream": 1, "logs": 1}, ws=True)
    try:
        api.start(c)
        got = b""
        while True:
            op, data = ws.recv_data()
            if op == websocket.ABNF.OPCODE_CLOSE:
                break
            assert op == websocket.ABNF.OPCODE_BINARY
            got += data
        assert got in (line.encode() + b"e", b"e" + line.encode())  # raw: no 8-byte frames
    finally:
        ws.close()


def test_attach_ws_stdin_and_end(api: UnixWsClient, daemon: Daemon, name: str) -> None:
    c = api.create_container("busybox", ["sh", "-c", "read x; echo got $x"], name=name,
                             stdin_open=True, detach=True)
    ws = api.attach_socket(c, {"stdin": 1, "stdout": 1, "stream": 1}, ws=True)
    try:
        api.start(c)
        ws.send_binary(b"hello\n")
        assert ws.recv() == b"got hello\n"
        op, _ = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_CLOSE  # the process ended
    finally:
        ws.close()
    assert api.wait(c)["StatusCode"] == 0


def test_attach_ws_errors(daemon: Daemon, name: str) -> None:
    create(daemon, name, ["true"])
    r = daemon.request("GET", "/containers/nosuchone/attach/ws")
    assert (r.status, json.loads(r.body)["message"]) == (404, "No such container: nosuchone")
    r = daemon.request("GET", f"/containers/{name}/attach/ws")
    assert (r.status, json.loads(r.body)["message"]) == (400, "not websocket protocol")
    assert daemon.request("POST", f"/containers/{name}/attach/ws").status in (404, 405)


# -- create-body fields -------------------------------------------------------------


def test_env_without_value_kept_in_config_dropped_from_process(daemon: Daemon,
                                                               name: str) -> None:
    create(daemon, name, ["sh", "-c", "env | sort"], Env=["Foo", "Other=one", "Blank="])
    # Docker: the request's items as given, then the image's not named there
    assert inspect(daemon, name)["Config"]["Env"] == [
        "Foo", "Other=one", "Blank=",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert daemon.request("POST", f"/containers/{name}/start").status == 204
    assert json.loads(daemon.request("POST", f"/containers/{name}/wait").body)[
        "StatusCode"] == 0
    out = daemon.request("GET", f"/containers/{name}/logs?stdout=1").body
    assert b"Other=one\n" in out and b"Blank=\n" in out and b"Foo" not in out


def test_log_config_options(daemon: Daemon, name: str) -> None:
    r = daemon.post_json(f"/containers/create?name={name}", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"LogConfig": {"Type": "", "Config": {"max-file": "100"}}}})
    assert r.status == 201, r.body
    assert any("log rotation" in w for w in json.loads(r.body)["Warnings"])
    assert inspect(daemon, name)["HostConfig"]["LogConfig"] == {
        "Type": "json-file", "Config": {"max-file": "100"}}
    for log_config, message in (
            ({"Type": "json-file", "Config": {"bogus": "1"}},
             "unknown log opt 'bogus' for json-file log driver"),
            ({"Type": "json-file", "Config": {"max-file": 3}},
             'invalid value for "HostConfig.LogConfig.Config"'),
            ({"Type": "asdf"}, 'error looking up logging plugin asdf: plugin "asdf" not found'),
            ({"Type": "syslog"}, "log driver 'syslog' (only json-file) is not supported")):
        r = daemon.post_json("/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                    "HostConfig": {"LogConfig": log_config}})
        assert r.status == 400 and message in json.loads(r.body)["message"], r.body


def test_group_add_bad_input(daemon: Daemon) -> None:
    for group_add, message in (
            (["a:b"], 'invalid value for "HostConfig.GroupAdd": a group name or number'),
            ([1000], 'invalid value for "HostConfig.GroupAdd": expected a list of strings'),
            ("x", 'invalid value for "HostConfig.GroupAdd": expected a list of strings')):
        r = daemon.post_json("/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                    "HostConfig": {"GroupAdd": group_add}})
        assert r.status == 400 and message in json.loads(r.body)["message"], r.body
    r = daemon.post_json("/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                "HostConfig": {"GroupAdd": []}})
    assert r.status == 201, r.body
    daemon.request("DELETE", f"/containers/{json.loads(r.body)['Id']}")


def test_resource_fields_echoed_as_docker(daemon: Daemon, name: str) -> None:
    r = daemon.post_json(f"/containers/create?name={name}", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"Memory": 100 << 20, "MemorySwappiness": 60,
                       "MemoryReservation": 50 << 20, "CpuShares": 512, "PidsLimit": 100,
                       "CpusetCpus": "0", "OomKillDisable": True,
                       "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}]}})
    assert r.status == 201, r.body
    assert any("CpuShares" in w and "not enforced" in w for w in json.loads(r.body)["Warnings"])
    hc = inspect(daemon, name)["HostConfig"]
    assert {k: hc[k] for k in ("Memory", "MemorySwap", "MemorySwappiness", "MemoryReservation",
                               "CpuShares", "PidsLimit", "CpusetCpus", "OomKillDisable",
                               "Ulimits", "BlkioWeight", "CpuPeriod", "KernelMemory")} == {
        "Memory": 100 << 20, "MemorySwap": 200 << 20, "MemorySwappiness": 60,
        "MemoryReservation": 50 << 20, "CpuShares": 512, "PidsLimit": 100,
        "CpusetCpus": "0", "OomKillDisable": True,
        "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}], "BlkioWeight": 0,
        "CpuPeriod": 0, "KernelMemory": 0}
    for host_config, message in (
            ({"Memory": 100 << 20, "MemorySwap": 50 << 20},
             "Minimum memoryswap limit should be larger than memory limit, see usage"),
            ({"Memory": 100 << 20, "MemoryReservation": 200 << 20},
             "Minimum memory limit can not be less than memory reservation limit, see usage"),
            ({"MemorySwappiness": 101},
             "Invalid value: 101, valid memory swappiness range is 0-100"),
            ({"MemoryReservation": 1}, "Minimum memory reservation allowed is 6MB"),
            ({"NanoCpus": 10**9, "CpuPeriod": 100000},
             "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
            ({"CpuShares": "x"}, 'invalid value for "HostConfig.CpuShares": expected an '
                                 "integer, got string"),
            ({"Ulimits": {}}, 'invalid value for "HostConfig.Ulimits": expected an array, '
                              'got object')):
        r = daemon.post_json("/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                    "HostConfig": host_config})
        assert r.status == 400 and json.loads(r.body)["message"] == message, r.body
