"""``POST /containers/create``: Docker's create body (Engine API ContainerConfig +
``HostConfig``) parsed into a ContainerSpec, once, at the edge.

Every field read is type-checked (a wrong type is a 400 naming the field); fields
Docker knows and vmcontainer does not read are ignored, as Docker ignores unknown
ones. Options whose silent loss would break the container's contract (other log
drivers) are
refused with a clear message until the engine supports them; minor ones become
create ``Warnings``, which the docker CLI prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vmcontainer.api.createchecks import refuse_unsupported
from vmcontainer.api.createnet import network_fields
from vmcontainer.engine import resources
from vmcontainer.engine.names_files import check_dns, check_extra_hosts
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.errors import InvalidParameter
from vmcontainer.volume.mounts import parse_all
from vmcontainer.volume.store import check_driver

JSON_FILE_OPTIONS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env",
                     "env-regex", "tag")
"""moby jsonfilelog ValidateLogOpt"""
ROTATION_OPTIONS = {"max-file", "max-size", "compress"}
DOCKER_LOG_DRIVERS = ("", "json-file", "none", "local", "syslog", "journald", "gelf",
                      "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries")


class Fields:
    """Typed reads from one JSON object; ``where`` prefixes field names in errors."""

    def __init__(self, doc: object, where: str) -> None:
        if doc is None:
            doc = {}
        if not isinstance(doc, dict) and not where:
            raise InvalidParameter(f"invalid JSON: the body must be a JSON object, not "
                                   f"{_kind(doc)}")
        if not isinstance(doc, dict):
            raise InvalidParameter(f'invalid value for "{where}": expected a JSON object, '
                                   f"got {_kind(doc)}")
        self.doc: dict[str, Any] = doc
        self.where = where

    def _bad(self, key: str, expected: str, value: object) -> InvalidParameter:
        name = f"{self.where}.{key}" if self.where else key
        return InvalidParameter(f'invalid value for "{name}": expected {expected}, '
                                f"got {_kind(value)}")

    def text(self, key: str) -> str:
        v = self.doc.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise self._bad(key, "a string", v)
        return v

    def flag(self, key: str) -> bool:
        v = self.doc.get(key)
        if v is None:
            return False
        if not isinstance(v, bool):
            raise self._bad(key, "a boolean", v)
        return v

    def integer(self, key: str) -> int:
        v = self.doc.get(key)
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "an integer", v)
        return v

    def optional_integer(self, key: str) -> int | None:
        """An integer that may be null (Go's ``*int64``: PidsLimit, MemorySwappiness)."""
        return None if self.doc.get(key) is None else self.integer(key)

    def array(self, key: str) -> list[Any] | None:
        v = self.doc.get(key)
        if v is not None and not isinstance(v, list):
            raise self._bad(key, "an array", v)
        return v

    def strings(self, key: str, *, one_string_ok: bool = False) -> tuple[str, ...] | None:
        """A list of strings (None when absent or null). Docker's StrSlice fields
        (Cmd, Entrypoint) also take one string."""
        v = self.doc.get(key)
        if v is None:
            return None
        if one_string_ok and isinstance(v, str):
            return (v,)
        if not isinstance(v, list) or not all(isinstance(i, str) for i in v):
            raise self._bad(key, "a list of strings", v)
        return tuple(v)

    def mapping(self, key: str) -> dict[str, Any]:
        v = self.doc.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self._bad(key, "a JSON object", v)
        return v

    def labels(self, key: str) -> dict[str, str]:
        v = self.mapping(key)
        if not all(isinstance(x, str) for x in v.values()):
            raise self._bad(key, "an object of strings", v)
        return dict(v)

    def sub(self, key: str) -> Fields:
        return Fields(self.mapping(key), f"{self.where}.{key}" if self.where else key)


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type (objects may be GoObjects, a dict subclass)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):  # a JSON object is a GoObject, a dict
            return name
    return type(value).__name__


def _unsupported(what: str) -> InvalidParameter:
    return InvalidParameter(f"{what} is not supported by vmcontainer yet")


def resource_fields(host: Fields) -> dict[str, Any]:
    """The resource fields of a HostConfig or update body that are present,
    type-checked (Memory and NanoCpus excluded)."""
    out: dict[str, Any] = {}
    readers: tuple[tuple[tuple[str, ...], Callable[[str], Any]], ...] = (
        (resources.INT_FIELDS, host.integer), (resources.STR_FIELDS, host.text),
        (resources.NULLABLE_INT_FIELDS, host.optional_integer),
        (resources.BOOL_FIELDS, host.flag), (resources.LIST_FIELDS, host.array))
    for keys, read in readers:
        for key in keys:
            if key in host.doc:
                out[key] = read(key)
    return out


def _log_options(log: Fields) -> dict[str, str]:
    """LogConfig: only json-file (or "", the default); its options checked as
    moby's jsonfilelog ``ValidateLogOpt``."""
    log_type = log.text("Type")
    if log_type not in DOCKER_LOG_DRIVERS:  # Docker's text for a name it does not know
        raise InvalidParameter(f'error looking up logging plugin {log_type}: plugin '
                               f'"{log_type}" not found')
    if log_type not in ("", "json-file"):
        raise _unsupported(f"log driver '{log_type}' (only json-file)")
    options = log.labels("Config")
    for key in options:
        if key not in JSON_FILE_OPTIONS:
            raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    return options


def _host_config(host: Fields, warnings: list[str]) -> dict[str, Any]:
    """The HostConfig keys the spec takes; refuses what cannot be honoured."""
    memory, nano_cpus = host.integer("Memory"), host.integer("NanoCpus")
    if memory < 0:
        raise InvalidParameter("invalid value for \"HostConfig.Memory\": must not be negative")
    if nano_cpus < 0:
        raise InvalidParameter("invalid value for \"HostConfig.NanoCpus\": must not be "
                               "negative")
    rc = resource_fields(host)
    if rc.get("MemorySwappiness") == -1:  # the docker CLI's "unset"; Docker records null
        rc["MemorySwappiness"] = None
    if rc.get("PidsLimit") is not None and rc["PidsLimit"] <= 0:  # Docker: unlimited, null
        rc["PidsLimit"] = None
    warnings.extend(resources.not_enforced(rc))
    group_add = host.strings("GroupAdd") or ()
    if any(not g or "\x00" in g or ":" in g for g in group_add):
        raise InvalidParameter('invalid value for "HostConfig.GroupAdd": a group name or '
                               "number per item")
    restart = host.sub("RestartPolicy")
    policy = restart.text("Name")
    retries = restart.integer("MaximumRetryCount")
    resources.check_restart_policy(policy, retries)
    auto_remove = host.flag("AutoRemove")
    if auto_remove and policy not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    log_options = _log_options(host.sub("LogConfig"))
    if ROTATION_OPTIONS & log_options.keys():
        warnings.append("log rotation (LogConfig max-size, max-file, compress) is stored but "
                        "not applied by vmcontainer yet: the json-file log grows unbounded")
    if host.flag("Privileged"):
        warnings.append("Privileged has no meaning for a VM container; ignored")
    return {"memory_bytes": memory, "nano_cpus": nano_cpus, "auto_remove": auto_remove,
            "restart_policy": policy or "no", "restart_max_retries": retries,
            "init": host.flag("Init"), "console_size": _console_size(host),
            **_names(host), "group_add": group_add,
            "resources": rc, "log_options": log_options}


def _mounts(cfg: Fields, host: Fields) -> dict[str, Any]:
    """Binds, Mounts, Tmpfs, Config.Volumes parsed into MountPoints
    (``vmcontainer.volume.mounts``), and the HostConfig keys to record."""
    binds = host.strings("Binds") or ()
    mounts = host.array("Mounts") or []
    tmpfs = host.mapping("Tmpfs")
    volumes = tuple(cfg.mapping("Volumes"))
    readonly = host.flag("ReadonlyRootfs")
    recorded: dict[str, Any] = {"Binds": list(binds) or None, "ReadonlyRootfs": readonly,
                                "VolumeDriver": host.text("VolumeDriver"),
                                "VolumesFrom": list(host.strings("VolumesFrom") or ()) or None}
    parsed = parse_all(binds, mounts, tmpfs, volumes)
    if any(m.type == "volume" for m in parsed):
        check_driver(recorded["VolumeDriver"])
    if mounts:
        recorded["Mounts"] = mounts
    if tmpfs:
        recorded["Tmpfs"] = tmpfs
    return {"mounts": parsed, "volumes": volumes,
            "mount_config": recorded}


def _names(host: Fields) -> dict[str, tuple[str, ...]]:
    """--dns, --dns-search, --dns-option, --add-host: checked, for the guest's
    /etc/resolv.conf and /etc/hosts (``vmcontainer.engine.names_files``)."""
    dns = host.strings("Dns") or ()
    extra = host.strings("ExtraHosts") or ()
    check_dns(dns)
    check_extra_hosts(extra)
    return {"dns": dns, "dns_search": host.strings("DnsSearch") or (),
            "dns_options": host.strings("DnsOptions") or (), "extra_hosts": extra}


def _console_size(host: Fields) -> tuple[int, int] | None:
    """HostConfig.ConsoleSize ``[height, width]`` (Engine API >= 1.42)."""
    v = host.doc.get("ConsoleSize")
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 2 and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 0xFFFF for i in v)):
        raise InvalidParameter('invalid value for "HostConfig.ConsoleSize": expected '
                               "[height, width], two integers from 0 to 65535")
    return (v[0], v[1]) if any(v) else None


HEALTH_TEST_KINDS = ("NONE", "CMD", "CMD-SHELL")
#: moby's minimum for Interval, Timeout, StartPeriod when given (1 ms, in ns)
MIN_HEALTH_DURATION_NS = 1_000_000


def _healthcheck(hc: Fields) -> dict[str, object]:
    """Docker's HealthConfig, checked (moby ``validateHealthCheck``): Test is
    ``[]`` (inherit), ``["NONE"]``, ``["CMD", args...]`` or ``["CMD-SHELL", cmd]``;
    durations in ns, 0 or at least 1 ms; Retries >= 0."""
    test = list(hc.strings("Test") or ())
    if test and test[0] not in HEALTH_TEST_KINDS:
        raise InvalidParameter(f'invalid value for "Healthcheck.Test": unknown kind '
                               f'{test[0][:32]!r} (NONE, CMD or CMD-SHELL)')
    out: dict[str, object] = {"Test": test}
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        ns = hc.integer(key)
        if ns != 0 and ns < MIN_HEALTH_DURATION_NS:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
        out[key] = ns
    retries = hc.integer("Retries")
    if retries < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")
    out["Retries"] = retries
    return out


def parse_create(body: object, name: str) -> tuple[ContainerSpec, list[str]]:
    """The spec and the create response's ``Warnings``. Raises InvalidParameter."""
    cfg = Fields(body, "")
    image = cfg.text("Image")
    if not image:
        raise InvalidParameter('invalid value for "Image": an image is required')
    warnings: list[str] = []
    refuse_unsupported(cfg.doc, cfg.sub("HostConfig").doc, warnings)
    stop_timeout = (cfg.integer("StopTimeout") if cfg.doc.get("StopTimeout") is not None
                    else None)
    host = _host_config(cfg.sub("HostConfig"), warnings)
    host.update(_mounts(cfg, cfg.sub("HostConfig")))
    spec = ContainerSpec(
        image=image,
        cmd=cfg.strings("Cmd", one_string_ok=True),
        entrypoint=cfg.strings("Entrypoint", one_string_ok=True),
        env=cfg.strings("Env") or (),
        working_dir=cfg.text("WorkingDir"),
        user=cfg.text("User"),
        hostname=cfg.text("Hostname"),
        name=name,
        labels=cfg.labels("Labels"),
        tty=cfg.flag("Tty"),
        attach_stdin=cfg.flag("AttachStdin"),
        attach_stdout=cfg.flag("AttachStdout") if "AttachStdout" in cfg.doc else True,
        attach_stderr=cfg.flag("AttachStderr") if "AttachStderr" in cfg.doc else True,
        open_stdin=cfg.flag("OpenStdin"),
        stdin_once=cfg.flag("StdinOnce"),
        healthcheck=_healthcheck(cfg.sub("Healthcheck")) if cfg.doc.get("Healthcheck")
        is not None else None,
        stop_signal=cfg.text("StopSignal"),
        stop_timeout=stop_timeout,
        **network_fields(cfg.doc, cfg.sub("HostConfig").doc),
        **host,
    )
    return spec, warnings


def create_response(container_id: str, warnings: list[str]) -> Mapping[str, object]:
    return {"Id": container_id, "Warnings": warnings}
