"""Shared fixtures. Tests that boot VMs use a fresh data root per session, and the
machine's shared boot-asset cache (the guest kernel is built once per machine)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("VMCONTAINER_BOOT_DIR", "/var/lib/vmcontainer/boot"
                      if os.geteuid() == 0 else str(Path.home() / ".cache/vmcontainer/boot"))
