"""``vmcontainer run -t`` and ``exec -t`` from a real terminal (a pexpect PTY): the
container's TTY, its size following the local terminal, raw mode (^C reaches the
container as a byte), ctrl-p ctrl-q detaching, and the docker CLI's refusal of
``-it`` without a terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pexpect
import pytest
from conftest import Vmc

pytestmark = pytest.mark.vm


def _spawn(vmc: Vmc, *args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "vmcontainer", *args], env=vmc.env,
                         encoding="utf-8", timeout=120, dimensions=(33, 101))


def test_run_it_shell_resize_ctrl_c_and_exit_code(vmc: Vmc, busybox: str) -> None:
    child = _spawn(vmc, "run", "-it", "--rm", busybox, "sh")
    try:
        child.expect(r"[#$] ")
        child.sendline("tty; stty size")
        child.expect(r"/dev/pts/0\r\n33 101\r\n")
        child.setwinsize(40, 120)  # SIGWINCH: the CLI resizes the container's TTY
        time.sleep(1)
        child.sendline("stty size")
        child.expect(r"\r\n40 120\r\n")
        # Raw mode: ^C is a byte for the container's TTY, which interrupts `sleep`
        # there; the CLI itself does not die of SIGINT.
        child.sendline("sleep 100")
        time.sleep(1)
        child.send("\x03")
        child.expect(r"\^C", timeout=20)
        child.sendline("echo alive $?")
        child.expect(r"alive 130\r\n")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3


def test_run_it_detaches_on_ctrl_p_ctrl_q(vmc: Vmc, busybox: str) -> None:
    child = _spawn(vmc, "run", "-it", "--name", "detachable", busybox, "sh")
    try:
        child.expect(r"[#$] ")
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    state = json.loads(vmc("inspect", "detachable").out)[0]["State"]
    assert state["Running"] is True
    vmc("rm", "-f", "detachable", check=True)


def test_run_t_without_stdin_gives_terminal_output(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", "-t", busybox, "sh", "-c", "echo hi; tty; exit 4")
    assert r.returncode == 4, r.err
    assert r.stdout == b"hi\r\n/dev/pts/0\r\n"  # one stream, the PTY's line endings


def test_it_without_a_terminal_is_refused(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "-it", "--rm", busybox, "true", input=b"")
    assert (r.returncode, r.err) == (1, "the input device is not a TTY\n")
    r = vmc("exec", "-it", "nosuch", "true", input=b"")
    assert (r.returncode, r.err) == (1, "the input device is not a TTY\n")


def test_exec_it_in_a_running_container(vmc: Vmc, busybox: str) -> None:
    vmc("run", "-d", "--name", "ttyexec", busybox, "sleep", "600", check=True)
    try:
        child = _spawn(vmc, "exec", "-it", "ttyexec", "sh")
        try:
            child.expect(r"[#$] ")
            child.sendline("tty; stty size")
            child.expect(r"/dev/pts/\d+\r\n33 101\r\n")
            child.sendline("exit 5")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        assert child.exitstatus == 5
        r = subprocess.run([sys.executable, "-m", "vmcontainer", "exec", "-t", "ttyexec",
                            "echo", "x"], env=vmc.env, capture_output=True, timeout=120)
        assert (r.returncode, r.stdout) == (0, b"x\r\n")
    finally:
        vmc("rm", "-f", "ttyexec")
