"""``python -m vmcontainer`` is the ``vmcontainer`` command."""

from vmcontainer.cli.main import main

main()
