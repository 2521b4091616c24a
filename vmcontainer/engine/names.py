"""Container names: Docker's validation rule and a generator of random names."""

from __future__ import annotations

import re
import secrets

from vmcontainer.errors import InvalidParameter

MAX_NAME = 253  # a name is also the VM's default hostname source; keep it DNS-sized
# moby daemon/names: restrictedNamePattern
VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = (
    "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid",
    "merry", "nimble", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "witty",
)
_NAMES = (
    "bonneville", "bellard", "hopper", "lovelace", "torvalds", "ritchie", "thompson",
    "popek", "goldberg", "kivity", "liguori", "agesen", "rosenblum", "bugnion", "devine",
    "pratt", "barham", "waldspurger",
)


def validate_name(name: str) -> str:
    """The name without its leading '/'; raises InvalidParameter with Docker's text."""
    if len(name) > MAX_NAME or not VALID_NAME.match(name):
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise InvalidParameter(
            f"Invalid container name ({shown}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def random_name() -> str:
    """``adjective_name`` plus a number, e.g. ``keen_popek3``."""
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}{secrets.randbelow(100)}"
