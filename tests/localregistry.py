"""Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1, started by tests.

``LocalRegistry(base).start()`` serves plain HTTP on a free port; ``htpasswd`` adds
basic auth (bcrypt, the only hash distribution accepts); ``tls`` serves HTTPS with a
certificate from a throw-away CA made with ``openssl``. ``seed`` pushes a
docker-archive with skopeo; ``seed_index`` pushes an OCI image index (written here
by hand, OCI image-spec ``image-index.md``) whose entries are the given platforms of
one image. ``netns``/``address``: serve in that network namespace (made by the test)
on that address instead. ``ThrottledProxy`` forwards to the registry slowly, so a test can kill
the registry in the middle of a layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt

REGISTRY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_cert(directory: Path, names: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost")
              ) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``names`` (subjectAltName entries):
    (ca, cert, key)."""
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=" + ",".join(names) + "\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=vmcontainer test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True)
    return ca, cert, key


class LocalRegistry:
    """One ``docker-registry serve`` in ``base`` (its storage and config there)."""

    def __init__(self, base: Path, htpasswd: tuple[str, str] | None = None,
                 tls: bool = False, netns: str = "", address: str = "127.0.0.1",
                 cert_names: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost")) -> None:
        self.base = base
        self.port = free_port()
        self.address = address
        self.host = f"{address}:{self.port}"
        self.credentials = htpasswd
        self.tls = tls
        self.cert_names = cert_names
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        lines = ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
                 f"    rootdirectory: {self.base / 'data'}", "  delete:", "    enabled: true",
                 "http:", f"  addr: {self.host}"]
        if self.tls:
            _, cert, key = make_cert(self.base, self.cert_names)
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        if self.credentials:
            user, password = self.credentials
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
            (self.base / "htpasswd").write_text(f"{user}:{hashed}\n")
            lines += ["auth:", "  htpasswd:", "    realm: test",
                      f"    path: {self.base / 'htpasswd'}"]
        config = self.base / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> LocalRegistry:
        self.base.mkdir(parents=True, exist_ok=True)
        config = self._config()
        with open(self.base / "registry.log", "ab") as log:
            self.proc = subprocess.Popen([*self.prefix, REGISTRY, "serve", str(config)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        scheme = "https" if self.tls else "http"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._listening():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError((self.base / "registry.log").read_text())
            time.sleep(0.05)
        raise RuntimeError(f"registry on {scheme}://{self.host} did not start")

    def _listening(self) -> bool:
        if self.prefix:  # another network namespace: ask from inside it
            probe = f"import socket; socket.create_connection(({self.address!r}, {self.port}), 1)"
            return subprocess.run([*self.prefix, "python3", "-c", probe],
                                  capture_output=True).returncode == 0
        try:
            with socket.create_connection((self.address, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _dest_args(self) -> list[str]:
        args = ["--dest-tls-verify=false"]
        if self.credentials:
            args.append("--dest-creds={}:{}".format(*self.credentials))
        return args

    def seed(self, archive: Path, name: str) -> None:
        """Push the docker-archive ``archive`` as ``<host>/<name>``."""
        subprocess.run([*self.prefix, "skopeo", "--insecure-policy", "copy", "--quiet",
                        *self._dest_args(),
                        f"docker-archive:{archive}", f"docker://{self.host}/{name}"],
                       check=True, capture_output=True)

    def seed_index(self, archive: Path, name: str, platforms: list[tuple[str, str]],
                   work: Path) -> str:
        """Push an OCI index whose entries (one per (os, arch)) all name the image of
        ``archive``; return the image ID (skopeo's ``oci:`` copy re-encodes the
        config, so it differs from the archive's)."""
        layout = work / "layout"
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet",
                        f"docker-archive:{archive}", f"oci:{layout}:img"],
                       check=True, capture_output=True)
        index = json.loads((layout / "index.json").read_text())
        image = index["manifests"][0]
        image.pop("annotations", None)
        entries = [{**image, "platform": {"os": os_, "architecture": arch}}
                   for os_, arch in platforms]
        blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image."
                           "index.v1+json", "manifests": entries}).encode()
        digest = hashlib.sha256(blob).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(blob)
        index["manifests"] = [{"mediaType": "application/vnd.oci.image.index.v1+json",
                               "digest": "sha256:" + digest, "size": len(blob),
                               "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
        (layout / "index.json").write_text(json.dumps(index))
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--all",
                        *self._dest_args(), f"oci:{layout}:multi",
                        f"docker://{self.host}/{name}"], check=True, capture_output=True)
        manifest = json.loads((layout / "blobs" / "sha256" /
                               image["digest"].split(":")[1]).read_text())
        return str(manifest["config"]["digest"])

    def has_manifest(self, name: str, tag: str) -> bool:
        url = f"http://{self.host}/v2/{name}/manifests/{tag}"
        request = urllib.request.Request(url, method="HEAD", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
                      "application/vnd.docker.distribution.manifest.v2+json"})
        try:
            with urllib.request.urlopen(request, timeout=10):
                return True
        except urllib.error.HTTPError:
            return False


class ThrottledProxy:
    """127.0.0.1:<port> forwarding to ``target`` at about ``rate`` bytes/s (downstream)."""

    def __init__(self, target_port: int, rate: int) -> None:
        self.target_port, self.rate = target_port, rate
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.rate),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, rate: int) -> None:
        try:
            while data := src.recv(16384):
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.sock.close()
