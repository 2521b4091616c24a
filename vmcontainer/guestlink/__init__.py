"""Host side of the agent protocol (guest/PROTOCOL.md) and the config disk."""
