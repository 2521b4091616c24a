"""The container shim: one background process per detached container that owns its
VM, writes its logs and records its exit — what containerd-shim is to runc.

``python -m vmcontainer.engine.shim <container-id> <status-fd>``: writes one JSON
line to ``status-fd`` once the process has started (``{"ok": true}``) or failed
(``{"ok": false, "message": ..., "exit_code": ...}``), then stays until the VM ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from vmcontainer.config import Settings
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.start import start_container
from vmcontainer.errors import StartError, VmcError
from vmcontainer.vm.accel import choose_accelerator
from vmcontainer.vm.qemu import QemuBackend


async def _main(cid: str, status_fd: int) -> int:
    ctx = EngineContext(Settings.from_env())
    try:
        choice = await choose_accelerator(ctx.boot_assets(), ctx.settings.boot_dir)
        ctx.backend = QemuBackend(choice.accel, tie_to_parent=True)
        running = await start_container(ctx, cid)
    except VmcError as err:
        code = err.exit_code if isinstance(err, StartError) else 125
        os.write(status_fd, json.dumps({"ok": False, "message": str(err),
                                        "exit_code": code}).encode() + b"\n")
        return 1
    os.write(status_fd, b'{"ok": true}\n')
    os.close(status_fd)
    await running.wait()
    return 0


def main() -> None:
    cid, fd = sys.argv[1], int(sys.argv[2])
    sys.exit(asyncio.run(_main(cid, fd)))


if __name__ == "__main__":
    main()
