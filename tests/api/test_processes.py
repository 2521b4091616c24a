"""Processes inside the VM through the real ``docker`` CLI: stdin, TTYs (driven by a
real PTY with pexpect), detach keys, exec, signals and stop, top, --init, health
checks. Every container is a real VM (QEMU, TCG here)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pexpect
import pytest
from apihelpers import Daemon

pytestmark = pytest.mark.vm


def docker(d: Daemon, *args: str, input: str | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          input=input, timeout=timeout)


def inspect(d: Daemon, ref: str) -> dict[str, object]:
    return json.loads(docker(d, "inspect", ref).stdout)[0]  # type: ignore[no-any-return]


def wait_for_output(d: Daemon, ref: str, text: str, timeout: float = 20) -> None:
    """Until ``text`` is in the container's logs; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while text not in docker(d, "logs", ref).stdout:
        assert time.monotonic() < deadline, f"{text!r} not in the logs of {ref}"
        time.sleep(0.1)


@pytest.fixture
def web(daemon: Daemon, name: str) -> Iterator[str]:
    r = docker(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c",
               "echo hello > /tmp/greeting; trap 'echo got USR1' USR1; echo ready; "
               "while true; do sleep 0.2; done")
    assert r.returncode == 0, r.stderr
    wait_for_output(daemon, name, "ready")  # the trap is set once "ready" is out
    yield name
    docker(daemon, "rm", "-f", name)


def test_stdin_is_piped_and_closed(daemon: Daemon) -> None:
    r = docker(daemon, "run", "-i", "--rm", "busybox", "wc", "-l", input="a\nb\n")
    assert (r.returncode, r.stdout.strip()) == (0, "2"), r.stderr
    r = docker(daemon, "run", "-i", "--rm", "busybox", "cat", input="abc\n")
    assert (r.returncode, r.stdout) == (0, "abc\n"), r.stderr
    big = "".join(f"line {i}\n" for i in range(20000))  # ~200 KB, more than a pipe holds
    r = docker(daemon, "run", "-i", "--rm", "busybox", "md5sum", input=big)
    import hashlib
    assert r.stdout.split()[0] == hashlib.md5(big.encode()).hexdigest(), r.stderr


def test_without_i_stdin_is_empty(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "busybox", "cat", input="ignored\n")
    assert (r.returncode, r.stdout) == (0, "")


def _spawn(d: Daemon, *args: str) -> pexpect.spawn:
    child = pexpect.spawn("docker", list(args), env=d.docker_env, encoding="utf-8",
                          timeout=60, dimensions=(33, 101))
    return child


def test_tty_session_resize_detach_and_reattach(daemon: Daemon, name: str) -> None:
    child = _spawn(daemon, "run", "-it", "--name", name, "busybox", "sh")
    try:
        child.expect(r"[#$] ")
        child.sendline("echo $((6*7))")
        child.expect(r"\r\n42\r\n")
        child.sendline("tty; stty size")
        child.expect(r"/dev/pts/0\r\n33 101\r\n")
        child.setwinsize(40, 120)  # SIGWINCH → the CLI resizes the container's TTY
        time.sleep(1)
        child.sendline("stty size")
        child.expect(r"\r\n40 120\r\n")
        child.send("\x10\x11")  # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert inspect(daemon, name)["State"]["Running"] is True  # type: ignore[index]
    again = _spawn(daemon, "attach", name)
    try:
        again.sendline("echo back $((1+1))")
        again.expect(r"back 2\r\n")
        again.sendline("exit 3")
        again.expect(pexpect.EOF)
    finally:
        again.close()
    assert again.exitstatus == 3
    assert inspect(daemon, name)["State"]["ExitCode"] == 3  # type: ignore[index]
    docker(daemon, "rm", name)


def test_exec_exit_code_user_env_cwd(daemon: Daemon, web: str) -> None:
    assert docker(daemon, "exec", web, "sh", "-c", "exit 5").returncode == 5
    r = docker(daemon, "exec", "-u", "nobody", web, "id", "-u")
    assert (r.returncode, r.stdout) == (0, "65534\n"), r.stderr
    r = docker(daemon, "exec", "-e", "X=1", "-w", "/tmp", web, "sh", "-c", "echo $X $PWD")
    assert r.stdout == "1 /tmp\n", r.stderr
    r = docker(daemon, "exec", web, "cat", "/tmp/greeting")  # the main process's files
    assert r.stdout == "hello\n"
    r = docker(daemon, "exec", "-i", web, "tr", "a-z", "A-Z", input="shout\n")
    assert r.stdout == "SHOUT\n", r.stderr
    r = docker(daemon, "exec", web, "nosuchcmd")
    assert r.returncode == 127, (r.returncode, r.stdout, r.stderr)
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.stdout + r.stderr


def test_exec_tty(daemon: Daemon, web: str) -> None:
    child = _spawn(daemon, "exec", "-it", web, "sh")
    try:
        child.expect(r"[#$] ")
        child.sendline("tty; ps | grep -c 'sleep 0.2'")
        child.expect(r"/dev/pts/\d+\r\n")
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4


def test_exec_on_a_stopped_container(daemon: Daemon, name: str) -> None:
    assert docker(daemon, "create", "--name", name, "busybox", "true").returncode == 0
    r = docker(daemon, "exec", name, "true")
    assert r.returncode == 1 and "is not running" in r.stderr, r.stderr
    docker(daemon, "rm", name)


def test_kill_signal_reaches_a_trap_and_top_lists_processes(daemon: Daemon, web: str) -> None:
    assert docker(daemon, "kill", "-s", "USR1", web).returncode == 0
    wait_for_output(daemon, web, "got USR1")
    top = docker(daemon, "top", web)
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert any("while true" in ln for ln in lines[1:]), top.stdout


def test_stop_with_and_without_a_term_handler(daemon: Daemon, name: str) -> None:
    docker(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c",
           "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done")
    wait_for_output(daemon, name, "ready")  # the trap is set once "ready" is out
    assert docker(daemon, "stop", name).returncode == 0
    assert inspect(daemon, name)["State"]["ExitCode"] == 0  # type: ignore[index]
    docker(daemon, "rm", name)
    docker(daemon, "run", "-d", "--name", name, "busybox", "sleep", "300")
    t = time.monotonic()
    assert docker(daemon, "stop", "-t", "2", name).returncode == 0
    assert time.monotonic() - t < 15
    assert inspect(daemon, name)["State"]["ExitCode"] == 137  # type: ignore[index]
    docker(daemon, "rm", name)


def test_init_forwards_signals(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "--init", "busybox", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 143, r.stderr
    r = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 0, r.stderr


def test_health_check_turns_healthy_then_unhealthy(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok",
               "--health-interval", "1s", "--health-retries", "1", "busybox", "sh", "-c",
               "touch /tmp/ok; sleep 300")
    assert r.returncode == 0, r.stderr

    def status() -> str:
        return inspect(daemon, name)["State"]["Health"]["Status"]  # type: ignore[index]

    deadline = time.monotonic() + 30
    while status() != "healthy":
        assert time.monotonic() < deadline, inspect(daemon, name)["State"]
        time.sleep(0.3)
    assert "(healthy)" in docker(daemon, "ps", "--filter", f"name={name}").stdout
    docker(daemon, "exec", name, "rm", "/tmp/ok")
    while status() != "unhealthy":
        assert time.monotonic() < deadline + 30, inspect(daemon, name)["State"]
        time.sleep(0.3)
    health = inspect(daemon, name)["State"]["Health"]  # type: ignore[index]
    assert health["FailingStreak"] >= 1 and health["Log"][-1]["ExitCode"] == 1
    docker(daemon, "rm", "-f", name)


def test_loopback_is_up(daemon: Daemon) -> None:
    """As in every Docker container, even with --network none."""
    r = docker(daemon, "run", "--rm", "busybox", "sh", "-c",
               "(nc -l -p 8080 -e echo served &); sleep 0.5; nc 127.0.0.1 8080")
    assert (r.returncode, r.stdout) == (0, "served\n"), r.stderr


def test_exec_start_failures_as_docker(daemon: Daemon, web: str) -> None:
    r = docker(daemon, "exec", "-w", "/nonexistent", web, "pwd")
    assert r.returncode == 126 and "chdir to cwd" in r.stdout + r.stderr
    assert docker(daemon, "exec", web, "test", "-e", "/nonexistent").returncode == 1
    r = docker(daemon, "exec", "-u", "nosuchuser", web, "true")
    assert r.returncode == 126 and "unable to find user nosuchuser" in r.stdout + r.stderr
    r = docker(daemon, "exec", web, "")
    assert r.returncode == 127 and 'exec: "": executable file not found' in r.stdout + r.stderr
    assert json.loads(docker(daemon, "inspect", web).stdout)[0]["State"]["Running"]


def test_failed_boot_with_rm_leaves_nothing(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "--rm", "--name", name, "-m", "1000g", "busybox", "true")
    assert r.returncode == 125, r.stderr
    assert name not in docker(daemon, "ps", "-a").stdout


def test_unsupported_options_are_refused_not_ignored(daemon: Daemon) -> None:
    for flags in (["--sysctl", "net.a=1"], ["--cap-drop", "ALL"], ["--pid", "host"]):
        r = docker(daemon, "run", "--rm", *flags, "busybox", "true")
        assert r.returncode == 125 and ("vmcontainer" in r.stderr or "VM container" in r.stderr), (
            flags, r.stderr)


def test_dns_and_extra_hosts_reach_the_guest(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "--dns", "10.9.8.7", "--dns-search", "corp.test",
               "--dns-option", "ndots:3", "--add-host", "db.local:10.1.2.3", "busybox",
               "sh", "-c", "cat /etc/resolv.conf; grep db.local /etc/hosts")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("nameserver 10.9.8.7\nsearch corp.test\noptions ndots:3\n"
                        "10.1.2.3\tdb.local\n")
    r = docker(daemon, "run", "--rm", "--add-host", "gw:host-gateway", "busybox", "true")
    assert r.returncode == 125 and "host-gateway" in r.stderr


def test_group_add_in_run_and_exec(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "-d", "--name", name, "--group-add", "1234", "--group-add",
               "nogroup", "-u", "nobody", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    for cmd in (["run", "--rm", "--group-add", "1234", "--group-add", "nogroup", "-u",
                 "nobody", "busybox", "id", "-G"], ["exec", name, "id", "-G"]):
        r = docker(daemon, *cmd)
        assert (r.returncode, r.stdout.split()) == (0, ["65534", "1234"]), (cmd, r.stderr)
    r = docker(daemon, "run", "--rm", "--group-add", "nosuchgroup", "busybox", "true")
    assert r.returncode == 125
    assert "unable to find group nosuchgroup: no matching entries in group file" in r.stderr
    docker(daemon, "rm", "-f", name)
