"""``vmcontainer``: Docker's commands, each container in its own VM."""

from __future__ import annotations

import click

from vmcontainer import __version__
from vmcontainer.cli.common import setup_logging
from vmcontainer.cli.containers import inspect, logs, ps, rm
from vmcontainer.cli.images import images, import_, load, rmi
from vmcontainer.cli.run import run


@click.group(context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="vmcontainer")
@click.option("-D", "--debug", is_flag=True, help="Enable debug output")
def cli(debug: bool) -> None:
    """Run Docker containers, each as its own QEMU virtual machine."""
    setup_logging(debug)


for command in (run, ps, logs, inspect, rm, images, load, import_, rmi):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="vmcontainer")
