"""vmcontainer: every Docker container is its own small QEMU virtual machine."""

__version__ = "0.1.0"
