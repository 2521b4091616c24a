"""Machines: MachineSpec → a running VM through one Backend protocol."""
