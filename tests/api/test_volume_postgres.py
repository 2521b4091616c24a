"""The issue's done-when: PostgreSQL (Debian bookworm with ``postgresql``, built by
mmdebstrap and cached for the day) writes a row into a named volume; the container
is removed; a new container on the same volume reads the row back. Real docker CLI,
real VMs (TCG here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from apihelpers import Daemon
from imagebuild import debian_rootfs, write_docker_archive
from test_docker_cli import docker

pytestmark = pytest.mark.vm

IMAGE = "vmc-test/postgres:15"
PG = "/usr/lib/postgresql/15/bin"
# The image's cluster (made by the package's postinst), its sockets in /tmp, no TLS.
START = (f"{PG}/pg_ctl -D /var/lib/postgresql/15/main -w -t 300 -l /tmp/pg.log -o "
         "\"-c config_file=/etc/postgresql/15/main/postgresql.conf "
         "-c unix_socket_directories=/tmp -c listen_addresses='' -c ssl=off\" start "
         ">/dev/null || { cat /tmp/pg.log; exit 1; }")
STOP = f"{PG}/pg_ctl -D /var/lib/postgresql/15/main -m fast -w stop >/dev/null"


@pytest.fixture(scope="module")
def postgres_image(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    rootfs = debian_rootfs(("postgresql",))
    archive = tmp_path_factory.mktemp("pg") / "pg.tar"
    write_docker_archive(archive, [rootfs.read_bytes()], [IMAGE], {
        "Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                 "/sbin:/bin"],
        "Volumes": {"/var/lib/postgresql/data": {}}})
    r = docker(daemon, "load", "-i", str(archive), timeout=600)
    assert r.returncode == 0, r.stderr
    return IMAGE


def test_postgres_row_survives_in_a_named_volume(daemon: Daemon, postgres_image: str,
                                                 name: str) -> None:
    vol = name + "pg"
    t0 = time.monotonic()
    r = docker(daemon, "run", "--name", name, "-u", "postgres", "-m", "1g",
               "-v", f"{vol}:/var/lib/postgresql", postgres_image, "sh", "-c",
               f"{START} && psql -h /tmp -qc \"create table t(v text); "
               f"insert into t values ('kept across containers')\" && {STOP}",
               timeout=900)
    write_s = time.monotonic() - t0
    assert r.returncode == 0, (r.stdout, r.stderr)
    mounts = json.loads(docker(daemon, "inspect", name).stdout)[0]["Mounts"]
    assert {m["Destination"]: m["Type"] for m in mounts} == {
        "/var/lib/postgresql": "volume", "/var/lib/postgresql/data": "volume"}
    assert docker(daemon, "rm", "-v", name).returncode == 0
    t0 = time.monotonic()
    r = docker(daemon, "run", "--rm", "-u", "postgres", "-m", "1g",
               "-v", f"{vol}:/var/lib/postgresql", postgres_image, "sh", "-c",
               f"{START} && psql -h /tmp -Atc 'select v from t' && {STOP}", timeout=900)
    read_s = time.monotonic() - t0
    assert (r.returncode, r.stdout) == (0, "kept across containers\n"), r.stderr
    print(f"postgres under {daemon.root}: write run {write_s:.1f}s, read run {read_s:.1f}s")
    Path(daemon.root, "pg-timings.txt").write_text(f"{write_s:.1f} {read_s:.1f}\n")
    assert docker(daemon, "volume", "rm", vol).returncode == 0
