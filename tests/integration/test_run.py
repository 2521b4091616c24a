"""Issue "vmcontainer run": each case boots a real VM (QEMU TCG here) with the real
guest kernel and agent, through the real ``vmcontainer`` command."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from backends import BACKEND
from conftest import Vmc

pytestmark = pytest.mark.vm


def test_echo_hello(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "echo", "hello")
    assert (r.returncode, r.out) == (0, "hello\n"), r.err


def test_streams_and_exit_code(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.out == "out\n"
    assert r.err == "err\n"


def test_command_not_found_is_127(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "nosuchcmd")
    assert r.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.err


def test_not_executable_is_126(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "/etc/passwd")
    assert r.returncode == 126
    assert 'exec: "/etc/passwd": permission denied' in r.err


def test_main_process_is_pid_1(vmc: Vmc, busybox: str) -> None:
    assert vmc("run", "--rm", busybox, "sh", "-c", "echo $$").out == "1\n"


def test_pid_1_ignores_unhandled_signals(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "sh", "-c", "kill -9 $$; echo survived")
    assert (r.returncode, r.out) == (0, "survived\n")


def test_killed_child_reports_137(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "sh", "-c", "sleep 100 & kill -9 $!; wait $!")
    assert r.returncode == 137


def test_one_mib_of_output_is_byte_exact(vmc: Vmc, busybox: str) -> None:
    # 1 MiB of printable, line-structured data produced in the guest.
    script = "i=0; while [ $i -lt 16384 ]; do printf '%063d\\n' $i; i=$((i+1)); done"
    r = vmc("run", "--name", "mib", busybox, "sh", "-c", script)
    assert r.returncode == 0, r.err
    expected = b"".join(b"%063d\n" % i for i in range(16384))
    assert len(r.stdout) == 1 << 20
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(expected).digest()
    logs = vmc("logs", "mib")
    assert logs.stdout == expected
    vmc("rm", "mib", check=True)


def test_env_workdir_user_hostname(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", "-e", "FOO=bar", "-w", "/tmp/new", "-u", "nobody", "-h", "box",
            busybox, "sh", "-c", "env; pwd; id; hostname; cat /etc/hostname")
    lines = r.out.splitlines()
    assert "FOO=bar" in lines and "HOSTNAME=box" in lines and "HOME=/home" in lines
    assert any(line.startswith("PATH=/usr/local/sbin") for line in lines)
    assert "/tmp/new" in lines
    assert "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)" in r.out
    assert lines[-2:] == ["box", "box"]


def test_entrypoint_and_numeric_user(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", "--entrypoint", "id", "-u", "1234:5", busybox)
    assert r.out.strip() == "uid=1234 gid=5 groups=5", r.out + r.err
    assert vmc("run", "--rm", busybox, "id").out == "uid=0(root) gid=0(root) groups=0(root)\n"


def test_env_file(vmc: Vmc, busybox: str, tmp_path: object) -> None:
    from pathlib import Path
    f = Path(str(tmp_path)) / "env"
    f.write_text("# c\nA=1\nB=two words\n")
    r = vmc("run", "--rm", "--env-file", str(f), busybox, "sh", "-c", 'echo "$A/$B"')
    assert r.out == "1/two words\n"


def test_container_lifecycle_records(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--name", "kept", busybox, "sh", "-c", "echo kept > /state; exit 5")
    assert r.returncode == 5
    ps = vmc("ps", "-a").out
    assert "kept" in ps and "Exited (5)" in ps
    info = json.loads(vmc("inspect", "kept").out)[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 5
    assert info["Name"] == "/kept" and info["Config"]["Image"] == busybox
    assert info["HostConfig"]["LogConfig"]["Type"] == "json-file"
    conflict = vmc("run", "--name", "kept", busybox, "true")
    assert conflict.returncode == 125 and "is already in use" in conflict.err
    assert vmc("rm", "kept").returncode == 0
    assert "kept" not in vmc("ps", "-a").out
    missing = vmc("rm", "kept")
    assert missing.returncode == 1 and "No such container: kept" in missing.err


def test_memory_and_cpus_size_the_vm(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", "-m", "256m", "--cpus", "2", busybox, "sh", "-c",
            "grep MemTotal /proc/meminfo; nproc")
    total_kib = int(r.out.split()[1])
    assert 200 * 1024 < total_kib <= 256 * 1024
    assert r.out.split()[-1] == "2"


def test_missing_image_is_125(vmc: Vmc) -> None:
    r = vmc("run", "--rm", "nosuchimage")
    assert r.returncode == 125
    assert "Unable to find image 'nosuchimage:latest' locally" in r.err


def test_bad_kernel_is_one_clear_line(vmc: Vmc, busybox: str) -> None:
    """The daemon is started by the first command with that command's environment:
    a guest kernel that is not there fails that first command, in one line."""
    import subprocess
    import sys
    vmc.stop_daemon()
    env = {**vmc.env, "VMCONTAINER_KERNEL": "/nonexistent/vmlinux"}
    p = subprocess.run([sys.executable, "-m", "vmcontainer", "run", "--rm", busybox, "true"],
                       capture_output=True, env=env, timeout=120)
    assert p.returncode == 125
    assert b"guest kernel not found: /nonexistent/vmlinux" in p.stderr
    assert b"Traceback" not in p.stderr
    assert vmc.daemon_pid() is None


@pytest.mark.skipif(BACKEND != "qemu", reason="libvirtd, not the daemon, spawns QEMU there")
def test_missing_qemu_is_one_clear_line(vmc: Vmc, busybox: str, tmp_path: object) -> None:
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    bindir = Path(str(tmp_path)) / "bin"
    bindir.mkdir()
    (bindir / "qemu-img").symlink_to(shutil.which("qemu-img") or "/usr/bin/qemu-img")
    vmc.stop_daemon()
    env = {**vmc.env, "PATH": str(bindir)}
    try:
        p = subprocess.run([sys.executable, "-m", "vmcontainer", "run", "--rm", busybox,
                            "true"], capture_output=True, env=env, timeout=120)
    finally:
        vmc.stop_daemon()  # the next test's command starts one with the usual PATH
    assert p.returncode == 125
    assert b"qemu-system-x86_64 not found" in p.stderr, p.stderr
    assert b"Traceback" not in p.stderr
    assert os.environ["PATH"]


def test_detached_run_then_logs(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "-d", "--name", "bg", busybox, "sh", "-c", "echo started; sleep 2; echo done")
    assert r.returncode == 0, r.err
    assert len(r.out.strip()) == 64
    logs = vmc("logs", "-f", "bg")
    assert logs.out == "started\ndone\n"
    assert "Exited (0)" in vmc("ps", "-a").out
    vmc("rm", "bg", check=True)


def test_directory_and_missing_path(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", busybox, "/etc")
    assert r.returncode == 126 and 'exec: "/etc": permission denied' in r.err
    r = vmc("run", "--rm", busybox, "/nosuch")
    assert r.returncode == 127
    assert 'exec: "/nosuch": stat /nosuch: no such file or directory' in r.err


def test_unknown_user_is_125(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", "-u", "nosuch", busybox, "true")
    assert r.returncode == 125
    assert "unable to find user nosuch: no matching entries in passwd file" in r.err


def test_relative_workdir_is_125(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--rm", "-w", "rel", busybox, "true")
    assert r.returncode == 125
    assert "the working directory 'rel' is invalid, it needs to be an absolute path" in r.err


def test_hostile_layer_is_refused_and_contained(vmc: Vmc, tmp_path: object) -> None:
    """../evil is refused naming the entry; an absolute symlink followed by a write and
    an absolute hard link to /etc/shadow resolve inside the rootfs, never the host."""
    import os
    from pathlib import Path

    from imagebuild import Entry, busybox_rootfs_entries, layer_tar, write_docker_archive
    tag = f"pwn{os.getpid()}"
    shadow = Path("/etc/shadow").read_bytes()
    contained = layer_tar([*busybox_rootfs_entries(),
                           Entry("etc/shadow", data=b"image-shadow\n", mode=0o600),
                           Entry("escape", "symlink", target="/tmp"),
                           Entry(f"escape/{tag}", data=b"x"),
                           Entry("stolen", "hardlink", target="/etc/shadow")])
    archive = Path(str(tmp_path)) / "contained.tar"
    write_docker_archive(archive, [contained], ["contained:1"])
    vmc("load", "-i", str(archive), check=True)
    r = vmc("run", "--rm", "contained:1", "sh", "-c", f"cat /stolen; ls /tmp/{tag}")
    assert r.returncode == 0, r.err
    assert r.out == f"image-shadow\n/tmp/{tag}\n"
    assert not Path("/tmp", tag).exists() and Path("/etc/shadow").read_bytes() == shadow

    evil = layer_tar([*busybox_rootfs_entries(), Entry(f"../{tag}", data=b"y")])
    archive = Path(str(tmp_path)) / "evil.tar"
    write_docker_archive(archive, [evil], ["evil:1"])
    vmc("load", "-i", str(archive), check=True)
    r = vmc("run", "--rm", "evil:1", "true")
    assert r.returncode == 125
    assert f'"../{tag}" is outside of "/"' in r.err
    assert "Traceback" not in r.err
    assert not any(p.name == tag for p in vmc.root.rglob("*"))
    assert not Path("/", tag).exists() and not Path("/tmp", tag).exists()


def test_output_streams_while_the_container_runs(vmc: Vmc, busybox: str) -> None:
    import subprocess
    import sys
    import time
    p = subprocess.Popen([sys.executable, "-m", "vmcontainer", "run", "--rm", busybox, "sh",
                          "-c", "echo first; sleep 3; echo second"],
                         stdout=subprocess.PIPE, env=vmc.env)
    assert p.stdout is not None
    assert p.stdout.readline() == b"first\n"
    seen_first = time.monotonic()
    assert p.stdout.readline() == b"second\n"
    assert time.monotonic() - seen_first > 2.0  # "first" came before the sleep ended
    assert p.wait(timeout=60) == 0


def test_images_and_rmi(vmc: Vmc, tmp_path: object) -> None:
    from pathlib import Path

    from imagebuild import busybox_rootfs_tar
    tarball = Path(str(tmp_path)) / "rootfs.tar"
    tarball.write_bytes(busybox_rootfs_tar())
    image_id = vmc("import", str(tarball), "scratchy:v1", check=True).out.strip()
    assert image_id.startswith("sha256:")
    listing = vmc("images").out
    assert "scratchy" in listing and "v1" in listing and image_id[7:19] in listing
    r = vmc("run", "--name", "user-of-scratchy", "scratchy:v1", "true")
    assert r.returncode == 0, r.err
    busy = vmc("rmi", "scratchy:v1")
    assert busy.returncode == 1 and "conflict: unable to remove repository reference" in busy.err
    vmc("rm", "user-of-scratchy", check=True)
    out = vmc("rmi", "scratchy:v1", check=True).out
    assert "Untagged: scratchy:v1" in out and f"Deleted: {image_id}" in out
    assert "scratchy" not in vmc("images").out
    assert not list((vmc.root / "image" / "rootfs").glob(image_id[7:] + "*"))


def _popen_run(vmc: Vmc, *args: str) -> subprocess.Popen[bytes]:
    import sys
    return subprocess.Popen([sys.executable, "-m", "vmcontainer", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=vmc.env)


def test_signals_are_proxied_to_the_container(vmc: Vmc, busybox: str) -> None:
    """Docker's --sig-proxy: SIGINT/SIGTERM to `run` reach the container's process."""
    import signal
    p = _popen_run(vmc, "--rm", busybox, "sh", "-c",
                   'trap "echo got INT; exit 3" INT; echo ready; while true; do sleep 0.1; done')
    assert p.stdout is not None
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out) == (3, b"got INT\n"), err


def test_killed_cli_leaves_the_container_running(vmc: Vmc, busybox: str) -> None:
    """SIGKILL of a foreground `run` is the death of a client, as with `docker run`:
    the container keeps running in the daemon, and `rm -f` ends its VM."""
    import subprocess
    import time
    p = _popen_run(vmc, "--name", "orphan", busybox, "sh", "-c", "echo up; sleep 300")
    assert p.stdout is not None and p.stdout.readline() == b"up\n"
    short = json.loads(vmc("inspect", "orphan").out)[0]["Id"][:12]
    p.kill()
    p.wait()
    line = next(ln for ln in vmc("ps").out.splitlines() if "orphan" in ln)
    assert " Up " in line
    assert vmc("logs", "orphan").out == "up\n"
    vmc("rm", "-f", "orphan", check=True)
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", f"vmc-{short}"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the VM outlived `rm -f`"
        time.sleep(0.1)


def test_usage_errors_are_125(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--bogus", busybox, "true")
    assert r.returncode == 125 and "--bogus" in r.err
    for bad in ("nan", "inf", "-1"):
        r = vmc("run", "--rm", "--cpus", bad, busybox, "true")
        assert r.returncode == 125 and "Traceback" not in r.err, r.err


def test_oom_kill_is_137_and_recorded(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "--name", "oom", "-m", "64m", busybox, "sh", "-c",
            'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo ${#x}')
    assert r.returncode == 137, r.err
    state = json.loads(vmc("inspect", "oom").out)[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    vmc("rm", "oom", check=True)
    r = vmc("run", "--name", "no-oom", busybox, "sh", "-c", "exit 137")
    assert json.loads(vmc("inspect", "no-oom").out)[0]["State"]["OOMKilled"] is False
    vmc("rm", "no-oom", check=True)


def test_load_from_stdin_and_images_newest_first(vmc: Vmc, tmp_path: object) -> None:
    from pathlib import Path

    from imagebuild import busybox_rootfs_tar, write_docker_archive
    layer = busybox_rootfs_tar(("sh", "echo"))
    archive = Path(str(tmp_path)) / "stdin.tar"
    write_docker_archive(archive, [layer], ["fromstdin:new"], {"Cmd": ["sh"]},
                         created="2030-01-01T00:00:00Z")
    r = vmc("load", input=archive.read_bytes())
    assert r.returncode == 0 and "Loaded image: fromstdin:new" in r.out, r.err
    rows = vmc("images").out.splitlines()
    assert rows[1].split()[:2] == ["fromstdin", "new"]


def test_interactive_run_and_exec(vmc: Vmc, busybox: str) -> None:
    r = vmc("run", "-i", "--rm", busybox, "wc", "-l", input=b"a\nb\n")
    assert (r.returncode, r.out.strip()) == (0, "2"), r.err
    vmc("run", "-d", "--name", "ex", busybox, "sh", "-c", "echo hi > /tmp/f; sleep 300",
        check=True)
    assert vmc("exec", "ex", "sh", "-c", "exit 5").returncode == 5
    r = vmc("exec", "-i", "-e", "X=y", "ex", "sh", "-c", "cat /tmp/f - ; echo $X", input=b"in\n")
    assert (r.returncode, r.out) == (0, "hi\nin\ny\n"), r.err
    r = vmc("exec", "ex", "nosuchcmd")
    assert r.returncode == 127 and "executable file not found" in r.out + r.err
    vmc("rm", "-f", "ex", check=True)
    r = vmc("exec", "ex", "true")
    assert r.returncode == 1 and "No such container: ex" in r.err
