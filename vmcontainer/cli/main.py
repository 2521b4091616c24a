"""``vmcontainer``: Docker's commands, each container in its own VM."""

from __future__ import annotations

import sys

import click

from vmcontainer import __version__
from vmcontainer.cli.common import setup_logging
from vmcontainer.cli.containers import inspect, logs, ps, rm
from vmcontainer.cli.daemon import daemon
from vmcontainer.cli.execcmd import exec_
from vmcontainer.cli.images import images, import_, load, rmi
from vmcontainer.cli.pull import pull, push
from vmcontainer.cli.run import run
from vmcontainer.cli.system import system


@click.group(context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="vmcontainer")
@click.option("-D", "--debug", is_flag=True, help="Enable debug output")
@click.option("-H", "--host", default=None, envvar="VMCONTAINER_HOST",
              help="Daemon to talk to (unix:///path or ssh://[user@]host[:port]); default "
                   "the local daemon's socket, which is started on first use")
@click.pass_context
def cli(ctx: click.Context, debug: bool, host: str | None) -> None:
    """Run Docker containers, each as its own QEMU virtual machine."""
    setup_logging(debug)
    ctx.obj = {"host": host}


for command in (run, exec_, ps, logs, inspect, rm, images, load, import_, rmi, pull,
                push):
    cli.add_command(command)
cli.add_command(daemon)
cli.add_command(system)


def main() -> None:
    """Run the command line. Exit codes as Docker's CLI: 125 for a usage error
    (unknown flag, missing argument), 130 when interrupted before a container ran."""
    try:
        code = cli.main(prog_name="vmcontainer", standalone_mode=False)
    except click.UsageError as err:
        err.show()
        sys.exit(125)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (click.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
