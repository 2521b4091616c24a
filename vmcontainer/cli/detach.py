"""``vmcontainer run -d``: create the container here, hand it to a shim process
(``vmcontainer.engine.shim``) that outlives this command, print the ID once the
shim reports the process started."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from vmcontainer.cli.common import make_context
from vmcontainer.engine.create import create_container
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.errors import StartError, System


def run_detached(spec: ContainerSpec) -> str:
    """Returns the container ID. Raises what create raises, StartError when the
    process cannot start, System when the shim dies."""
    ctx = make_context()
    container = create_container(ctx.store, ctx.images, spec)
    ctx.boot_assets()
    rfd, wfd = os.pipe()
    log = open(ctx.store.dir(container.id) / "shim.log", "ab")  # noqa: SIM115
    with log:
        subprocess.Popen(
            [sys.executable, "-m", "vmcontainer.engine.shim", container.id, str(wfd)],
            pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )
    os.close(wfd)
    with os.fdopen(rfd, "rb") as status:
        line = status.readline()
    if not line:
        raise System(f"the container shim died; see {ctx.store.dir(container.id)}/shim.log")
    result = json.loads(line)
    if not result["ok"]:
        raise StartError(result["message"], int(result["exit_code"]))
    return container.id
