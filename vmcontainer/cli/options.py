"""Parsing of docker-run style option values: env files, memory sizes, CPUs.
Formats: Docker CLI (opts/env.go ParseEnvFile, go-units RAMInBytes)."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from vmcontainer.errors import InvalidParameter

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)b?$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """``512m`` → 536870912 (binary units, as go-units RAMInBytes)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise InvalidParameter(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def nano_cpus(text: str) -> int:
    """``1.5`` → 1500000000 (Docker's --cpus)."""
    try:
        value = float(text)
    except ValueError as err:
        raise InvalidParameter(f'invalid argument "{text}" for "--cpus" flag') from err
    if not math.isfinite(value) or value < 0:
        raise InvalidParameter(f'invalid argument "{text}" for "--cpus" flag')
    return int(value * 1e9)


def env_item(item: str) -> str | None:
    """``-e KEY=VALUE`` as is; ``-e KEY`` takes KEY from this environment, or is
    dropped when unset (Docker CLI ValidateEnv)."""
    key, eq, _ = item.partition("=")
    if not key.strip():
        raise InvalidParameter(f"invalid environment variable: {item}")
    if eq:
        return item
    return f"{key}={os.environ[key]}" if key in os.environ else None


def parse_env_file(path: Path) -> list[str]:
    """Lines ``KEY=VALUE`` or ``KEY``; ``#`` comments and blank lines skipped;
    leading whitespace trimmed; whitespace inside a key is an error."""
    try:
        text = path.read_text()
    except OSError as err:
        reason = err.strerror.lower() if err.strerror else str(err)
        raise InvalidParameter(f"open {path}: {reason}") from err
    out: list[str] = []
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0]
        if re.search(r"\s", key):
            raise InvalidParameter(f"variable '{key}' contains whitespaces")
        item = env_item(line)
        if item is not None:
            out.append(item)
    return out
