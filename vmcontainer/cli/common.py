"""What every command shares: logging and the daemon host."""

from __future__ import annotations

import logging
import sys

import click


def setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not debug:
        # qemu.qmp logs every failed connection attempt at ERROR; the backend
        # handles those, so its messages are for debugging only.
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL + 1)


def daemon_host() -> str | None:
    """The ``-H`` / VMCONTAINER_HOST the command was given, if any."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get("host") if isinstance(obj, dict) else None
