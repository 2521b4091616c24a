"""``vmcontainer daemon``: its options. The implementation
(``vmcontainer.cli.daemonmain``: aiohttp, the engine, QEMU) is imported only when
the daemon runs, so that every other command starts without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("-H", "--host", "hosts", multiple=True,
              help="Where to listen: unix:///path or tcp://host:port (TLS only)")
@click.option("--config-file", type=click.Path(path_type=Path), default=None,
              help="daemon.json to read (default /etc/vmcontainer/daemon.json as root)")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Root of persistent state (default /var/lib/vmcontainer as root)")
@click.option("-D", "--debug", is_flag=True, default=None, help="Enable debug output")
@click.option("-p", "--pidfile", type=click.Path(path_type=Path), default=None,
              help="Path to use for the daemon PID file (default <data-root>/vmcontainer.pid)")
@click.option("-G", "--group", default=None, help="Group of the unix socket")
@click.option("--insecure-registry", "insecure", multiple=True,
              help="Registry (host[:port] or CIDR) reached without TLS checks")
@click.option("--registry-mirror", "mirrors", multiple=True,
              help="Mirror of Docker Hub (http[s]://host[:port]), tried first")
@click.option("--tlsverify", is_flag=True, default=None,
              help="Require TLS client certificates (needed for tcp://)")
@click.option("--tlscacert", default=None, help="CA that signs client certificates")
@click.option("--tlscert", default=None, help="Server certificate")
@click.option("--tlskey", default=None, help="Server key")
@click.option("--backend", type=click.Choice(["qemu", "libvirt"]), default=None,
              help="How VMs run: qemu (spawned directly, default) or libvirt domains")
@click.option("--libvirt-uri", default=None,
              help="libvirt connection (default qemu:///system as root, else "
                   "qemu:///session; remote: qemu+ssh://user@host/system)")
@click.option("--libvirt-pool", default=None,
              help="Storage pool for files on a remote libvirt host (default: default)")
@click.option("--network-mode", type=click.Choice(["user", "bridge"]), default=None,
              help="Container networking: bridge (Docker's: Linux bridges, user-defined "
                   "networks; default as root) or user (QEMU user networking; default "
                   "otherwise)")
def daemon(hosts: tuple[str, ...], config_file: Path | None, data_root: Path | None,
           debug: bool | None, pidfile: Path | None, group: str | None,
           insecure: tuple[str, ...], mirrors: tuple[str, ...], tlsverify: bool | None,
           tlscacert: str | None, tlscert: str | None, tlskey: str | None,
           backend: str | None, libvirt_uri: str | None, libvirt_pool: str | None,
           network_mode: str | None) -> None:
    """Serve the Docker Engine API (docker, docker-py) on a unix socket."""
    flags: dict[str, Any] = {k: v for k, v in {
        "hosts": list(hosts) or None, "debug": debug, "data-root": str(data_root)
        if data_root else None, "group": group, "tlsverify": tlsverify,
        "tlscacert": tlscacert, "tlscert": tlscert, "tlskey": tlskey,
        "insecure-registries": list(insecure) or None,
        "registry-mirrors": list(mirrors) or None, "backend": backend,
        "libvirt-uri": libvirt_uri, "libvirt-pool": libvirt_pool,
        "network-mode": network_mode}.items()
        if v is not None}
    from vmcontainer.cli.daemonmain import run

    run(flags, config_file, pidfile)
