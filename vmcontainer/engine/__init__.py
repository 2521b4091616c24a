"""Containers: records and their state machine, the store on disk, logs, lifecycle."""
