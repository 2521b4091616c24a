"""The ``vmcontainer`` command."""
