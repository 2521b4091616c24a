"""Every route over the unix socket with good and bad input: status, Docker's
message, and the daemon still serving afterwards. Containers here are created but
mostly not started; the stream tests boot real VMs."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from apihelpers import Daemon

SWARM = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm '
         'join" to connect this node to swarm and try again.')


@pytest.fixture(autouse=True)
def still_serving(daemon: Daemon) -> Iterator[None]:
    yield
    assert daemon.request("GET", "/_ping", timeout=10).body == b"OK"


def created(daemon: Daemon, name: str, **body: object) -> str:
    r = daemon.post_json(f"/containers/create?name={name}",
                         {"Image": "busybox", "Cmd": ["true"], **body})
    assert r.status == 201, r.body
    assert r.headers["Content-Type"] == "application/json"
    return str(r.json()["Id"])


def test_ping_headers(daemon: Daemon) -> None:
    for method in ("GET", "HEAD"):
        r = daemon.request(method, "/_ping")
        assert r.status == 200
        assert r.body == (b"OK" if method == "GET" else b"")
        h = r.headers
        assert (h["Api-Version"], h["Ostype"], h["Docker-Experimental"]) == \
            ("1.47", "linux", "false")
        assert h["Server"].startswith("vmcontainer/")
        assert "no-cache" in h["Cache-Control"]


@pytest.mark.parametrize("path", ["/v1.24/_ping", "/v1.47/_ping", "/_ping", "/v1.40/version"])
def test_versions_in_range(daemon: Daemon, path: str) -> None:
    assert daemon.request("GET", path).status == 200


def test_versions_out_of_range(daemon: Daemon) -> None:
    r = daemon.request("GET", "/v1.12/version")
    assert (r.status, r.message) == (400, "client version 1.12 is too old. Minimum supported "
                                     "API version is 1.24, please upgrade your client to a "
                                     "newer version")
    r = daemon.request("GET", "/v1.99/containers/json")
    assert (r.status, r.message) == (400, "client version 1.99 is too new. Maximum supported "
                                     "API version is 1.47")


def test_version_and_info(daemon: Daemon) -> None:
    v = daemon.request("GET", "/version").json()
    assert (v["ApiVersion"], v["MinAPIVersion"], v["Os"], v["Arch"]) == \
        ("1.47", "1.24", "linux", "amd64")
    assert v["KernelVersion"] and v["Components"][0]["Name"] == "Engine"
    info = daemon.request("GET", "/info").json()
    assert info["Accelerator"] in ("kvm", "tcg")
    assert info["DefaultRuntime"] == "vmcontainer" and "vmcontainer" in info["Runtimes"]
    assert (info["Driver"], info["OSType"], info["LoggingDriver"]) == \
        ("qcow2", "linux", "json-file")
    assert info["NCPU"] >= 1 and info["MemTotal"] > 0 and info["Images"] >= 1
    for key in ("Containers", "ContainersRunning", "ContainersStopped", "ServerVersion",
                "OperatingSystem", "Name", "ID", "DockerRootDir"):
        assert key in info


@pytest.mark.parametrize("method,path", [("GET", "/nothing"), ("GET", "/v1.47/nothing"),
                                         ("PUT", "/containers/json"), ("GET", "/v1.x/_ping")])
def test_unknown_routes(daemon: Daemon, method: str, path: str) -> None:
    r = daemon.request(method, path)
    assert (r.status, r.message) == (404, "page not found")


@pytest.mark.parametrize("method,path", [("GET", "/services"), ("POST", "/swarm/init"),
                                         ("GET", "/v1.47/nodes"), ("GET", "/secrets/x"),
                                         ("GET", "/configs"), ("GET", "/tasks")])
def test_swarm_is_unavailable(daemon: Daemon, method: str, path: str) -> None:
    r = daemon.request(method, path)
    assert (r.status, r.message) == (503, SWARM)


# -- create ------------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"Image": "busybox", "Cmd": 5}, '"Cmd"'),
    ({"Image": "busybox", "Env": "A=1"}, '"Env"'),
    ({"Image": "busybox", "Labels": ["a"]}, '"Labels"'),
    ({"Image": "busybox", "Labels": {"a": 1}}, '"Labels"'),
    ({"Image": "busybox", "Tty": "yes"}, '"Tty"'),
    ({"Image": "busybox", "WorkingDir": 1}, '"WorkingDir"'),
    ({"Image": 7}, '"Image"'),
    ({"Image": "busybox", "HostConfig": []}, '"HostConfig"'),
    ({"Image": "busybox", "HostConfig": {"Memory": "1g"}}, '"HostConfig.Memory"'),
    ({"Image": "busybox", "HostConfig": {"NanoCpus": 1.5}}, '"HostConfig.NanoCpus"'),
    ({"Image": "busybox", "HostConfig": {"AutoRemove": 1}}, '"HostConfig.AutoRemove"'),
    ({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": 3}}},
     '"HostConfig.RestartPolicy.Name"'),
])
def test_create_wrong_types(daemon: Daemon, body: dict[str, object], field: str) -> None:
    r = daemon.post_json("/containers/create", body)
    assert r.status == 400, r.body
    assert field in r.message and "expected" in r.message


@pytest.mark.parametrize("raw,ctype,message", [
    (b"{bad", "application/json", "invalid JSON"),
    (b"", "application/json", "invalid JSON: got EOF while reading request body"),
    (b"[]", "application/json", "must be a JSON object"),
    (b'{"Image": "busybox"}', "text/plain", "Content-Type specified (text/plain) must be"),
    (b'{"Cmd": ["true"]}', "application/json", "an image is required"),
])
def test_create_malformed(daemon: Daemon, raw: bytes, ctype: str, message: str) -> None:
    r = daemon.request("POST", "/containers/create", raw, {"Content-Type": ctype})
    assert r.status == 400 and message in r.message, r.body


def test_create_refuses_what_it_cannot_honour(daemon: Daemon) -> None:
    for host, what in (({"Sysctls": {"a.b": "1"}}, "sysctls"),
                       ({"LogConfig": {"Type": "syslog"}}, "log driver")):
        r = daemon.post_json("/containers/create", {"Image": "busybox", "HostConfig": host})
        assert r.status == 400 and what in r.message and "not supported" in r.message
    for body, message in (
            ({"HostConfig": {"ConsoleSize": [24]}}, 'invalid value for "HostConfig.ConsoleSize"'),
            ({"Healthcheck": {"Test": ["BOGUS"]}}, 'invalid value for "Healthcheck.Test"'),
            ({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 5}},
             "Interval in Healthcheck cannot be less than 1ms"),
            ({"Healthcheck": {"Retries": -1}}, "Retries in Healthcheck cannot be negative"),
            ({"OpenStdin": "yes"}, 'invalid value for "OpenStdin": expected a boolean'),
            ({"Labels": {"a": 1}}, 'invalid value for "Labels": expected an object of '
                                   "strings, got object"),
            ({"Cmd": ["a\u0000b"]}, 'invalid value for "Cmd": contains a NUL byte'),
            ({"HostConfig": {"Binds": ["/a:b"]}}, "invalid volume specification: '/a:b'"),
            ({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/nonexistent-vmc",
                                         "Target": "/x"}]}},
             'invalid mount config for type "bind": bind source path does not exist: '
             "/nonexistent-vmc"),
            ({"HostConfig": {"Binds": ["/a:/x", "v1:/x"]}}, "Duplicate mount point: /x"),
            ({"HostConfig": {"IpcMode": "host"}}, "no IPC namespace shared"),
            ({"HostConfig": {"NetworkMode": "host"}}, "no network namespace shared"),
            ({"HostConfig": {"PortBindings": {"80/sctp": []}}}, "invalid proto: sctp")):
        r = daemon.post_json("/containers/create", {"Image": "busybox", **body})
        assert r.status == 400 and message in r.message, r.message
    r = daemon.post_json("/containers/create", {"Image": "busybox", "HostConfig": {
        "RestartPolicy": {"Name": "bogus"}}})
    assert (r.status, r.message) == (400, "invalid restart policy 'bogus'")


@pytest.mark.parametrize("host,message", [  # Docker 20.10's texts
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
     "maximum retry count cannot be used with restart policy 'always'"),
    ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}},
     "maximum retry count cannot be negative"),
    ({"RestartPolicy": {"Name": "always"}, "AutoRemove": True},
     "can't create 'AutoRemove' container with restart policy"),
])
def test_create_restart_policy_errors(daemon: Daemon, host: dict[str, object],
                                      message: str) -> None:
    r = daemon.post_json("/containers/create", {"Image": "busybox", "HostConfig": host})
    assert (r.status, r.message) == (400, message)


def test_pause_errors_of_a_created_container(daemon: Daemon, name: str) -> None:
    cid = created(daemon, name, HostConfig={"RestartPolicy": {
        "Name": "on-failure", "MaximumRetryCount": 2}})
    doc = daemon.request("GET", f"/containers/{cid}/json").json()
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert doc["RestartCount"] == 0
    r = daemon.request("POST", f"/containers/{cid}/pause")
    assert (r.status, r.message) == (409, f"Container {cid} is not running")
    r = daemon.request("POST", f"/containers/{cid}/unpause")
    assert (r.status, r.message) == (500, f"Container {cid} is not paused")
    assert daemon.request("DELETE", f"/containers/{cid}").status == 204


def test_create_ignores_unknown_fields(daemon: Daemon, name: str) -> None:
    cid = created(daemon, name, Unknown={"x": 1}, HostConfig={
        "Memory": 128 << 20, "NanoCpus": 10**9, "AutoRemove": False, "Whatever": True,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "LogConfig": {"Type": "json-file", "Config": {}}, "NetworkMode": "default",
        "PortBindings": {}, "Binds": None},
        Env=["A=1"], Labels={"k": "v"}, WorkingDir="/tmp", User="0", Hostname="h1",
        Entrypoint=None, Tty=False, AttachStdout=True, AttachStderr=True)
    doc = daemon.request("GET", f"/containers/{cid}/json").json()
    assert doc["Name"] == f"/{name}" and doc["Config"]["Labels"]["k"] == "v"
    assert doc["HostConfig"]["Memory"] == 128 << 20
    assert doc["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert "A=1" in doc["Config"]["Env"] and doc["Config"]["Hostname"] == "h1"
    assert daemon.request("DELETE", f"/containers/{cid}").status == 204


def test_create_missing_image_and_names(daemon: Daemon, name: str) -> None:
    r = daemon.post_json("/containers/create", {"Image": "nosuchimage"})
    assert (r.status, r.message) == (404, "No such image: nosuchimage:latest")
    r = daemon.post_json("/containers/create?name=bad/name", {"Image": "busybox"})
    assert r.status == 400 and "Invalid container name (bad/name)" in r.message
    cid = created(daemon, name)
    r = daemon.post_json(f"/containers/create?name={name}", {"Image": "busybox"})
    assert r.status == 409 and name in r.message
    huge = "a" * (1 << 20)
    r = daemon.post_json(f"/containers/create?name={huge}", {"Image": "busybox"})
    assert r.status == 400 and '"name"' in r.message and len(r.body) < 1024
    r = daemon.request("POST", f"/containers/{cid}/rename?name={huge}")
    assert r.status == 400 and len(r.body) < 1024
    r = daemon.request("GET", f"/containers/{huge}/json")
    assert r.status == 404 and len(r.body) < 8192
    assert daemon.request("DELETE", f"/containers/{cid}").status == 204


# -- unknown containers, path tricks ------------------------------------------------

@pytest.mark.parametrize("method,suffix", [
    ("GET", "/json"), ("POST", "/start"), ("POST", "/stop"), ("POST", "/restart"),
    ("POST", "/kill"), ("POST", "/wait"), ("POST", "/attach?stream=1&stdout=1"),
    ("GET", "/logs?stdout=1"), ("DELETE", ""), ("POST", "/rename?name=x2"),
    ("POST", "/pause"), ("POST", "/unpause"),
])
@pytest.mark.parametrize("ref", ["nosuchcontainer", "..%2F..%2Fetc%2Fpasswd", "%2e%2e",
                                 "a%00b"])
def test_unknown_container(daemon: Daemon, method: str, suffix: str, ref: str) -> None:
    r = daemon.request(method, f"/containers/{ref}{suffix}")
    assert r.status == 404, r.body
    assert "No such container: " + urllib.parse.unquote(ref) in r.message


def test_images_path_tricks(daemon: Daemon) -> None:
    for ref in ("..%2F..%2Fetc", "../../etc", "a%00b"):
        r = daemon.request("GET", f"/images/{ref}/json")
        assert r.status in (400, 404), r.body
        assert "message" in r.json()
    r = daemon.request("GET", "/images/localhost:5000/a/b/json")
    assert (r.status, r.message) == (404, "No such image: localhost:5000/a/b:latest")


# -- query parameters -----------------------------------------------------------------

@pytest.mark.parametrize("query,message", [
    ("filters=bad", "invalid filters"),
    ("filters=" + urllib.parse.quote('{"bogus":["x"]}'), "Invalid filter 'bogus'"),
    ("filters=" + urllib.parse.quote('{"status":["sleepy"]}'), "status=sleepy"),
    ("filters=" + urllib.parse.quote('{"name":"x"}'), "list of strings"),
    ("limit=x", '"limit"'),
])
def test_list_bad_queries(daemon: Daemon, query: str, message: str) -> None:
    r = daemon.request("GET", f"/containers/json?all=1&{query}")
    assert r.status == 400 and message in r.message, r.body


def test_list_and_lifecycle_errors(daemon: Daemon, name: str) -> None:
    cid = created(daemon, name, Labels={"role": "routes"})
    listed = daemon.request("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(
        json.dumps({"label": ["role=routes"]}))).json()
    assert [c["Id"] for c in listed] == [cid]
    assert listed[0]["Names"] == [f"/{name}"] and listed[0]["State"] == "created"
    assert daemon.request("GET", "/containers/json?all=1&limit=1").status == 200
    assert daemon.request("GET", "/containers/json?size=1").status == 200
    r = daemon.request("POST", f"/containers/{cid}/stop")
    assert (r.status, r.body) == (304, b"")
    r = daemon.request("POST", f"/containers/{cid}/kill")
    assert r.status == 409 and "is not running" in r.message
    r = daemon.request("POST", f"/containers/{cid}/kill?signal=FOO")
    assert (r.status, r.message) == (400, "Invalid signal: FOO")
    r = daemon.request("POST", f"/containers/{cid}/stop?t=soon")
    assert r.status == 400 and '"t"' in r.message
    r = daemon.request("POST", f"/containers/{cid}/wait?condition=whenever")
    assert r.status == 400 and "condition" in r.message
    r = daemon.request("GET", f"/containers/{cid}/logs")
    assert (r.status, r.message) == (400, "Bad parameters: you must choose at least one "
                                     "stream")
    r = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&tail=lots")
    assert r.status == 400 and '"tail"' in r.message
    r = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&since=yesterday")
    assert r.status == 400 and '"since"' in r.message
    r = daemon.request("POST", f"/containers/{cid}/rename")
    assert (r.status, r.message) == (400, "Neither old nor new names may be empty")
    r = daemon.request("POST", f"/containers/{cid}/rename?name=no/slashes")
    assert r.status == 400
    assert daemon.request("POST", f"/containers/{cid}/rename?name={name}-2").status == 204
    assert daemon.request("GET", f"/containers/{name}-2/json").status == 200
    assert daemon.request("DELETE", f"/containers/{name}-2?force=1&v=1").status == 204
    assert daemon.request("DELETE", f"/containers/{cid}").status == 404


def test_events_bounded(daemon: Daemon, name: str) -> None:
    since = time.time()
    cid = created(daemon, name)
    daemon.request("DELETE", f"/containers/{cid}")
    until = time.time() + 0.5
    q = urllib.parse.urlencode({"since": f"{since:.9f}", "until": f"{until:.9f}",
                                "filters": json.dumps({"container": [name]})})
    t0 = time.monotonic()
    r = daemon.request("GET", f"/events?{q}", timeout=30)
    assert r.status == 200 and time.monotonic() - t0 < 5
    events = [json.loads(line) for line in r.body.splitlines()]
    assert [e["Action"] for e in events] == ["create", "destroy"]
    assert events[0]["Actor"]["ID"] == cid and events[0]["Type"] == "container"
    q = urllib.parse.urlencode({"since": "10", "until": "5"})
    assert daemon.request("GET", f"/events?{q}").status == 400
    bad = urllib.parse.quote(json.dumps({"colour": ["red"]}))
    assert daemon.request("GET", f"/events?since=1&until=2&filters={bad}").status == 400
    assert daemon.request("GET", "/events?since=never").status == 400


def test_a_body_sent_in_pieces_is_read_whole(daemon: Daemon, name: str) -> None:
    """A slow client's JSON arrives in several reads; the daemon waits for all of it."""
    import socket
    import time
    body = json.dumps({"Image": "busybox", "Labels": {"big": "a" * 300_000}}).encode()
    head = (f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.sock))
        s.sendall(head + body[:10])
        time.sleep(0.5)
        s.sendall(body[10:])
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 201"), reply[:300]
    daemon.request("DELETE", f"/containers/{name}")


def test_resize_and_exec_bad_input(daemon: Daemon, name: str) -> None:
    r = daemon.request("POST", "/containers/nosuch/resize")
    assert (r.status, r.message) == (400, 'strconv.Atoi: parsing "": invalid syntax')
    r = daemon.request("POST", "/containers/nosuch/resize?h=10&w=x")
    assert r.status == 400
    assert daemon.request("POST", "/containers/nosuch/resize?h=10&w=10").status == 404
    assert daemon.request("GET", "/exec/nosuch/json").status == 404
    assert daemon.request("POST", "/exec/nosuch/start", b"{}",
                          {"Content-Type": "application/json"}).status == 404
    cid = created(daemon, name)
    r = daemon.post_json(f"/containers/{cid}/exec", {"Cmd": []})
    assert (r.status, r.message) == (400, "No exec command specified")
    r = daemon.post_json(f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert r.status == 409 and "is not running" in r.message
    r = daemon.post_json(f"/containers/{cid}/exec", {"Cmd": ["true"], "DetachKeys": "ctrl-"})
    assert r.status == 400 and "Invalid escape keys" in r.message
    daemon.request("DELETE", f"/containers/{cid}")
