"""docker-py's own integration tests against ``vmcontainer daemon``.

    python bench/dockerpy_suite.py /path/to/docker-py [pytest args...]

Runs the test modules of a docker-py source tree (a git checkout: PyPI's sdist has
no tests) against a fresh vmcontainer daemon, with the installed ``docker``
package. Those tests pull Docker Hub images (``alpine:3.10``, ``alpine:latest``, ``busybox``,
``hello-world``); there is no Docker Hub here, so the daemon gets a mirror of it
(``--registry-mirror``): Debian's ``docker-registry`` on 127.0.0.1, seeded with
stand-ins under those names, and ``alpine:3.10`` is loaded first. The stand-in: Debian's
busybox-static with every applet, and Alpine's users and groups (uid 70
``postgres``, which ``test_exec_command_as_user`` uses) and directories
(``/var/opt``, ``test_exec_command_with_workdir``). Default selection: the
process tests of the issue "Processes inside the VM" (attach, exec, kill,
restart, pause, resize, top, wait, stop, logs, health); ``--images``: the image
tests of the issue "Images from registries" (``IMAGE_SELECTION``).

Prints pytest's summary line; the exit code is pytest's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imagebuild import Entry, busybox_rootfs_entries, layer_tar, write_docker_archive
from localregistry import LocalRegistry

from vmcontainer.config import Settings

# The daemons here run in the host's network namespace: user-mode networking, so
# that no bridge or nftables table is made there (bench/net_boot.py measures bridge
# mode inside a namespace of its own).
os.environ["VMCONTAINER_NETWORK"] = "user"

DEFAULT_SELECTION = ["tests/integration/api_container_test.py",
                     "tests/integration/api_exec_test.py",
                     "tests/integration/api_healthcheck_test.py",
                     "-k", "Attach or Kill or Restart or Pause or Resize or Top or Wait or "
                           "Stop or Exec or Health or Logs or Start or Signal"]
IMAGE_SELECTION = ["tests/integration/api_image_test.py",
                   "tests/integration/models_images_test.py",
                   "-k", "not build and not Build and not commit and not Commit"]
ALPINE_PASSWD = (b"root:x:0:0:root:/root:/bin/ash\n"
                 b"bin:x:1:1:bin:/bin:/sbin/nologin\n"
                 b"daemon:x:2:2:daemon:/sbin:/sbin/nologin\n"
                 b"postgres:x:70:70::/var/lib/postgresql:/bin/sh\n"
                 b"nobody:x:65534:65534:nobody:/:/sbin/nologin\n")
ALPINE_GROUP = (b"root:x:0:root\nbin:x:1:root,bin,daemon\ndaemon:x:2:root,bin,daemon\n"
                b"postgres:x:70:\nnogroup:x:65533:\nnobody:x:65534:\n")


def hello_world(path: Path) -> None:
    """``hello-world:latest``: one static binary that prints a greeting."""
    entries = [Entry("hello", data=Path("/bin/busybox").read_bytes(), mode=0o755)]
    write_docker_archive(path, [layer_tar(entries)], ["hello-world:latest"],
                         {"Cmd": ["/hello", "echo", "Hello from Docker!"]})


def stand_in(path: Path) -> None:
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    entries = [e for e in busybox_rootfs_entries([a for a in applets if a != "busybox"])
               if e.name not in ("etc/passwd", "etc/group")]
    entries += [Entry("etc/passwd", data=ALPINE_PASSWD), Entry("etc/group", data=ALPINE_GROUP),
                Entry("var", "dir", mode=0o755), Entry("var/opt", "dir", mode=0o755)]
    write_docker_archive(path, [layer_tar(entries)], ["alpine:3.10", "alpine:latest"],
                         {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:"
                                                      "/usr/sbin:/usr/bin:/sbin:/bin"]})


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    source = Path(sys.argv[1]).resolve()
    selection = sys.argv[2:] or DEFAULT_SELECTION
    if selection == ["--images"]:
        selection = IMAGE_SELECTION
    with tempfile.TemporaryDirectory(prefix="vmc-dockerpy-") as t:
        tmp = Path(t)
        sock = tmp / "d.sock"
        archive, hello = tmp / "alpine.tar", tmp / "hello.tar"
        stand_in(archive)
        hello_world(hello)
        mirror = LocalRegistry(tmp / "mirror").start()
        for path, names in ((archive, ("alpine:3.10", "alpine:latest", "busybox:latest")),
                            (hello, ("hello-world:latest",))):
            for name in names:
                mirror.seed(path, "library/" + name)
        env = {**os.environ, "VMCONTAINER_ROOT": str(tmp / "root"),
               "VMCONTAINER_BOOT_DIR": str(Settings.from_env().boot_dir),
               "DOCKER_HOST": f"unix://{sock}"}
        env.pop("DOCKER_TLS_VERIFY", None)
        with open(tmp / "daemon.log", "wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "vmcontainer", "daemon", "-H",
                                       f"unix://{sock}", "--registry-mirror",
                                       f"http://{mirror.host}"], env=env, stderr=log)
        try:
            while not sock.exists():
                if daemon.poll() is not None:
                    raise SystemExit((tmp / "daemon.log").read_text())
                time.sleep(0.05)
            subprocess.run(["docker", "load", "-i", str(archive)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            # the models tests use plain "alpine"
            subprocess.run(["docker", "tag", "alpine:3.10", "alpine:latest"], env=env, check=True)
            return subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "ignore",
                 "--timeout", "120", "-q", "-rfE", *selection],
                cwd=source, env=env).returncode
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            mirror.stop()


if __name__ == "__main__":
    sys.exit(main())
