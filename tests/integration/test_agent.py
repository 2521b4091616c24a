"""The guest agent over its port, protocol version 3 (guest/PROTOCOL.md): real VMs
(QEMU, TCG here) booted with a config disk written here and an overlay of a busybox
image, frames spoken directly through AgentLink — sessions, STDIN, PTYs, RESIZE,
EXEC, SIGNAL to exec sessions, TOP, --init, ACK and RESUME, NET_CONFIG's resolv_conf."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from backends import backend
from conftest import all_applets
from imagebuild import busybox_rootfs_tar, write_docker_archive

from vmcontainer.engine.names_files import hosts_text
from vmcontainer.engine.start import KERNEL_CMDLINE
from vmcontainer.guestlink.configdisk import write_config_disk
from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import PORT_NAME, Frame, MsgType
from vmcontainer.image.store import ImageStore
from vmcontainer.vm.accel import choose_accelerator
from vmcontainer.vm.bootassets import BootAssets
from vmcontainer.vm.overlay import create_overlay
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec

pytestmark = pytest.mark.vm

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTNAME = "agenttest"
TIMEOUT = 120.0


@pytest.fixture(scope="session")
def busybox_disk(tmp_path_factory: pytest.TempPathFactory, boot_assets: BootAssets) -> Path:
    """The ext4 base disk of a busybox image with every applet."""
    store = ImageStore(tmp_path_factory.mktemp("agent-images"))
    archive = tmp_path_factory.mktemp("agent-img") / "busybox.tar"
    write_docker_archive(archive, [busybox_rootfs_tar(all_applets())], ["busybox:latest"],
                         {"Cmd": ["sh"], "Env": [PATH]})
    store.load(archive)
    return store.rootfs_disk(store.resolve("busybox:latest"))


@pytest.fixture(scope="session")
def accel(boot_assets: BootAssets) -> str:
    boot_dir = Path(os.environ["VMCONTAINER_BOOT_DIR"])
    return asyncio.run(choose_accelerator(boot_assets, boot_dir)).accel


class Guest:
    """One booted VM: frames read by session, in order."""

    def __init__(self, link: AgentLink, *, ack: bool = True) -> None:
        self.link = link
        self._frames = link.frames()
        self._queues: dict[int, list[Frame]] = {}
        self.order: list[tuple[int, int]] = []  # (session, type) of every frame read
        self.main_pid = 0
        self.ack = ack  # acknowledge session 0's output as read, as the daemon does
        self.received = [0, 0]  # bytes of session 0's stdout, stderr read
        self.socket: str | Path = ""  # the port's unix socket, for a second host

    async def next(self, session: int) -> Frame:
        """The next frame about ``session`` (LOG frames skipped)."""
        async with asyncio.timeout(TIMEOUT):
            while not self._queues.get(session):
                frame = await anext(self._frames)
                if frame.type == MsgType.LOG:
                    continue
                self.order.append((frame.session, frame.type))
                self._queues.setdefault(frame.session, []).append(frame)
                if frame.session == 0 and frame.type in (MsgType.STDOUT, MsgType.STDERR):
                    self.received[frame.type == MsgType.STDERR] += len(frame.payload)
                    if self.ack:
                        self.link.ack(*self.received)
        return self._queues[session].pop(0)

    async def expect(self, session: int, msg_type: MsgType) -> dict[str, Any]:
        frame = await self.next(session)
        assert frame.type == msg_type, (frame, frame.payload)
        return frame.json()

    async def send(self, msg_type: MsgType, payload: bytes | dict[str, Any] = b"",
                   session: int = 0) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        await self.link.send(msg_type, payload, session)

    async def output_until(self, session: int, text: bytes) -> bytes:
        """STDOUT of ``session`` until it contains ``text``."""
        out = b""
        while text not in out:
            frame = await self.next(session)
            assert frame.type == MsgType.STDOUT, (frame, out)
            out += frame.payload
        return out

    async def run(self, session: int) -> tuple[bytes, bytes, dict[str, Any]]:
        """STDOUT, STDERR and EXIT of ``session``, once it has started."""
        out = err = b""
        while True:
            frame = await self.next(session)
            if frame.type == MsgType.STDOUT:
                out += frame.payload
            elif frame.type == MsgType.STDERR:
                err += frame.payload
            else:
                assert frame.type == MsgType.EXIT, (frame, out, err)
                return out, err, frame.json()

    async def exec(self, session: int, args: list[str], **kw: Any) -> dict[str, Any]:
        """EXEC; STARTED's or START_ERROR's object (with "type")."""
        req = {"args": args, "env": [PATH, *kw.pop("env", [])], "cwd": "/", "user": "",
               "tty": False, "stdin": False, "rows": 0, "cols": 0, **kw}
        await self.send(MsgType.EXEC, req, session)
        frame = await self.next(session)
        assert frame.type in (MsgType.STARTED, MsgType.START_ERROR), frame
        return {"type": frame.type, **frame.json()}


@contextlib.asynccontextmanager
async def boot(tmp_path: Path, disk: Path, assets: BootAssets, accel: str,
               process: dict[str, Any], name: str = "vm") -> AsyncIterator[Guest]:
    """Boot a VM running ``process`` (PROTOCOL.md's "process" object, defaults
    filled in); yields once its main process has started."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    write_config_disk(run_dir / "config.iso", {
        "id": "a" * 64, "hostname": HOSTNAME, "hosts": hosts_text(HOSTNAME),
        "resolv_conf": "nameserver 8.8.8.8\n",
        "rootfs": {"serial": "rootfs", "fstype": "ext4", "readonly": False},
        "process": {"env": [PATH], "cwd": "/", "user": "", "tty": False, "stdin": False,
                    "rows": 0, "cols": 0, "init": False, **process},
    })
    create_overlay(disk, run_dir / "rootfs.qcow2")
    spec = MachineSpec(
        name=f"vmc-test-{name}", kernel=assets.kernel, initramfs=assets.initramfs,
        cmdline=KERNEL_CMDLINE, memory_mib=256, vcpus=1, run_dir=run_dir,
        disks=(DiskSpec(run_dir / "rootfs.qcow2", "rootfs"),
               DiskSpec(run_dir / "config.iso", "config", format="raw", readonly=True)),
        channels=(ChannelSpec(PORT_NAME, "agent.sock"),),
    )
    machine = await (await backend(accel)).start(spec)
    try:
        link = await AgentLink.connect(machine.socket_path("agent.sock"))
        guest = Guest(link)
        guest.socket = machine.socket_path("agent.sock")
        assert (await guest.expect(0, MsgType.HELLO))["version"] == 3
        guest.main_pid = (await guest.expect(0, MsgType.STARTED))["pid"]
        yield guest
        await link.close()
    finally:
        await machine.kill()


@pytest.fixture
def vm(tmp_path: Path, busybox_disk: Path, boot_assets: BootAssets, accel: str) -> Any:
    def make(process: dict[str, Any], name: str = "vm") -> Any:
        return boot(tmp_path, busybox_disk, boot_assets, accel, process, name)
    return make


async def test_stdin_pipe_and_eof(vm: Any) -> None:
    # cat echoes more than the agent buffers (1 MiB), in frames of 64 KiB, back.
    data = bytes(range(256)) * 12288  # 3 MiB
    async with vm({"args": ["cat"], "stdin": True}) as g:
        async def feed() -> None:
            for i in range(0, len(data), 65536):
                await g.send(MsgType.STDIN, data[i:i + 65536])
            await g.send(MsgType.STDIN, b"")
        feeder = asyncio.create_task(feed())
        out, err, ex = await g.run(0)
        await feeder
        assert out == data and err == b""
        assert ex == {"exit_code": 0, "signal": None, "oom_killed": False}


async def test_tty_size_resize_and_eof(vm: Any) -> None:
    script = "tty; stty size; read line; stty size; echo got:$line; cat; echo after-eof"
    async with vm({"args": ["sh", "-c", script], "tty": True, "stdin": True,
                   "rows": 24, "cols": 80}) as g:
        out = await g.output_until(0, b"24 80")
        assert b"/dev/pts/0\r\n24 80" in out
        await g.send(MsgType.RESIZE, {"rows": 40, "cols": 100})
        await g.send(MsgType.STDIN, b"hello\n")
        out = await g.output_until(0, b"got:hello")
        assert b"40 100\r\n" in out
        await g.send(MsgType.STDIN, b"")  # ^D: cat reads EOF
        rest, err, ex = await g.run(0)
        assert b"after-eof" in rest and err == b""  # a TTY's output is STDOUT only
        assert ex["exit_code"] == 0


async def test_exec(vm: Any) -> None:
    main = "echo main > /tmp/mainfile; echo ready; exec sleep 600"
    async with vm({"args": ["sh", "-c", main]}) as g:
        await g.output_until(0, b"ready")
        # a missing cwd is a start error (125 from the agent; 126 for the user)
        missing = await g.exec(9, ["pwd"], cwd="/tmp/work")
        assert missing["type"] == MsgType.START_ERROR and "chdir to cwd" in missing["message"]
        # exit code, env, cwd, user, the main process's files and hostname
        started = await g.exec(1, ["sh", "-c", "echo $FOO; pwd; id -u; cat /tmp/mainfile; "
                                   "hostname; echo oops >&2; exit 3"],
                               env=["FOO=bar"], cwd="/tmp")
        assert started["type"] == MsgType.STARTED and started["pid"] > 1
        out, err, ex = await g.run(1)
        assert out == f"bar\n/tmp\n0\nmain\n{HOSTNAME}\n".encode() and err == b"oops\n"
        assert ex == {"exit_code": 3, "signal": None, "oom_killed": False}

        assert (await g.exec(2, ["id", "-u"], user="nobody"))["type"] == MsgType.STARTED
        assert (await g.run(2))[0] == b"65534\n"

        # the main process's PID namespace: its process is PID 1 there
        assert (await g.exec(3, ["ps", "-o", "pid,args"]))["type"] == MsgType.STARTED
        out = (await g.run(3))[0].decode()
        assert any(ln.split()[:3] == ["1", "sleep", "600"] for ln in out.splitlines()), out

        # errors: same codes and wording as the main process
        r = await g.exec(4, ["nosuchcmd"])
        assert r["type"] == MsgType.START_ERROR and r["exit_code"] == 127
        assert r["message"] == 'exec: "nosuchcmd": executable file not found in $PATH'
        r = await g.exec(5, ["true"], user="nosuchuser")
        assert r["type"] == MsgType.START_ERROR and r["exit_code"] == 125

        # a TTY of its own, with its initial size
        r = await g.exec(6, ["sh", "-c", "tty; stty size"], tty=True, rows=30, cols=120)
        assert r["type"] == MsgType.STARTED
        out, err, ex = await g.run(6)
        assert out == b"/dev/pts/0\r\n30 120\r\n" and ex["exit_code"] == 0

        # stdin of an exec session
        assert (await g.exec(7, ["wc", "-l"], stdin=True))["type"] == MsgType.STARTED
        await g.send(MsgType.STDIN, b"x\ny\n", 7)
        await g.send(MsgType.STDIN, b"", 7)
        assert (await g.run(7))[0].strip() == b"2"

        # SIGNAL to an exec session
        sleeper = await g.exec(8, ["sleep", "600"])
        await g.send(MsgType.SIGNAL, {"signal": 15}, 8)
        assert (await g.run(8))[2] == {"exit_code": 143, "signal": 15, "oom_killed": False}

        # TOP lists the main process and an exec'd one, not the agent
        sleeper = await g.exec(9, ["sleep", "601"])
        await g.send(MsgType.TOP, b"", 10)
        top = await g.expect(10, MsgType.PROCESSES)
        assert top["clk_tck"] > 0 and top["uptime_ms"] > 0
        procs = {p["pid"]: p for p in top["processes"]}
        assert 1 not in procs and list(procs) == sorted(procs)
        assert procs[g.main_pid]["cmdline"] == ["sleep", "600"]
        assert procs[g.main_pid]["comm"] == "sleep" and procs[g.main_pid]["uid"] == 0
        assert procs[sleeper["pid"]]["cmdline"] == ["sleep", "601"]
        assert procs[sleeper["pid"]]["state"] in ("S", "R")
        assert set(procs[g.main_pid]) == {"pid", "ppid", "uid", "tty", "start_ticks",
                                          "cpu_ticks", "rss_kib", "state", "comm", "cmdline"}

        # the main process ends: the open exec session's EXIT comes first
        await g.send(MsgType.SIGNAL, {"signal": 9}, 0)
        assert (await g.run(9))[2]["exit_code"] == 137
        assert (await g.run(0))[2]["exit_code"] == 137
        exits = [s for s, t in g.order if t == MsgType.EXIT]
        assert exits[-2:] == [9, 0]
        # and EXEC is refused once it has ended
        r = await g.exec(11, ["true"])
        assert r["type"] == MsgType.START_ERROR and r["exit_code"] == 126


@pytest.mark.parametrize(("init", "code"), [(True, 143), (False, 0)])
async def test_init(vm: Any, init: bool, code: int) -> None:
    # As PID 1 the shell ignores its own TERM; under the init it dies of it.
    async with vm({"args": ["sh", "-c", "kill -TERM $$; echo survived"], "init": init}) as g:
        out, _, ex = await g.run(0)
        assert ex["exit_code"] == code
        assert out == (b"" if init else b"survived\n")


async def test_init_forwards_signals_and_keeps_the_tty(vm: Any) -> None:
    script = "tty; trap 'echo usr1; exit 5' USR1; echo ready; while :; do sleep 0.1; done"
    async with vm({"args": ["sh", "-c", script], "init": True, "tty": True}) as g:
        assert b"/dev/pts/0\r\n" in await g.output_until(0, b"ready")
        await g.send(MsgType.TOP, b"", 1)
        procs = (await g.expect(1, MsgType.PROCESSES))["processes"]
        shell = next(p for p in procs if p["cmdline"][:2] == ["sh", "-c"])
        assert shell["ppid"] == g.main_pid and shell["tty"] != 0  # the init's child
        await g.send(MsgType.SIGNAL, {"signal": 10})
        out, _, ex = await g.run(0)
        assert b"usr1" in out and ex["exit_code"] == 5


async def test_unacknowledged_output_is_kept_up_to_1mib(vm: Any) -> None:
    """Output never waits for an ACK; without ACKs the agent keeps the last ~1 MiB
    of it, which a resuming host gets again."""
    size = 3 << 20
    script = f"seq 1000000 | head -c {size}"
    async with vm({"args": ["sh", "-c", script]}) as g:
        g.ack = False
        out, err, ex = await g.run(0)
        assert len(out) == size and err == b"" and ex["exit_code"] == 0
        await g.link.close()
        second = Guest(await AgentLink.connect(g.socket))
        await second.link.resume(0, 0)
        again, _, ex_again = await second.run(0)
        assert (1 << 20) - (1 << 16) <= len(again) <= 1 << 20 and out.endswith(again)
        assert ex_again == ex
        await second.link.close()


async def test_resume_sends_again_what_was_not_stored(vm: Any) -> None:
    """A second host (a restarted daemon) that stored 4 bytes gets the rest again,
    after RESUMED, then the output produced meanwhile, then EXIT; a third host that
    stored everything gets EXIT again only."""
    script = "echo one; echo err >&2; echo two; read x; echo three-$x"
    async with vm({"args": ["sh", "-c", script], "stdin": True}) as g:
        g.ack = False
        got = {MsgType.STDOUT: b"", MsgType.STDERR: b""}
        while got[MsgType.STDOUT] != b"one\ntwo\n" or got[MsgType.STDERR] != b"err\n":
            frame = await g.next(0)
            got[MsgType(frame.type)] += frame.payload
        await g.link.close()  # the first host dies having stored "one\n" only

        second = Guest(await AgentLink.connect(g.socket))
        await second.link.resume(4, 0)
        await second.send(MsgType.STDIN, b"x\n")
        out, err, ex = await second.run(0)
        assert (out, err, ex["exit_code"]) == (b"two\nthree-x\n", b"err\n", 0)
        await second.link.close()

        third = Guest(await AgentLink.connect(g.socket))
        await third.link.resume(4 + len(out), len(err))
        assert await third.run(0) == (b"", b"", ex)
        await third.link.close()


async def test_net_config_rewrites_resolv_conf_in_place(vm: Any) -> None:
    """NET_CONFIG's ``resolv_conf`` is written over the container's resolv.conf in
    place (same inode: its /etc/resolv.conf is a bind mount); a NET_CONFIG the
    agent refuses writes nothing."""
    async def resolv(session: int) -> bytes:
        assert (await g.exec(session, ["sh", "-c", "stat -c %i /etc/resolv.conf; "
                                       "cat /etc/resolv.conf"]))["type"] == MsgType.STARTED
        out, _, ex = await g.run(session)
        assert ex["exit_code"] == 0
        return out

    async def net_config(session: int, doc: dict[str, Any]) -> str:
        await g.send(MsgType.NET_CONFIG, doc, session)
        return str((await g.expect(session, MsgType.NET_RESULT))["error"])

    async with vm({"args": ["sleep", "600"]}) as g:
        before = await resolv(1)
        inode = before.split(b"\n")[0]
        assert before == inode + b"\nnameserver 8.8.8.8\n"
        assert "must be a string" in await net_config(10, {"resolv_conf": 5})
        bad_nic = {"network": {"interfaces": [{"mac": "nope", "name": ""}]},
                   "resolv_conf": "nameserver 10.0.0.9\n"}
        assert "mac" in await net_config(11, bad_nic)
        assert await resolv(2) == before
        text = "nameserver 172.18.0.1\nsearch example.org\n"
        assert await net_config(12, {"resolv_conf": text}) == ""
        assert await resolv(3) == inode + b"\n" + text.encode()
        assert await net_config(13, {"resolv_conf": ""}) == ""  # emptied, not removed
        assert await resolv(4) == inode + b"\n"
        await g.send(MsgType.SIGNAL, {"signal": 9}, 0)
        await g.run(0)
