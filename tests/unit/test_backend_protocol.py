"""Both backends satisfy the one Backend protocol (and their machines the Machine
protocol): every member is there, with the protocol's parameters, and async where
the protocol's is. (mypy checks the same statically: ``vm.factory.open_backend``
returns either as a ``Backend``.)"""

from __future__ import annotations

import inspect

import pytest

from vmcontainer.vm.backend import Backend, Machine
from vmcontainer.vm.libvirt import LibvirtBackend, LibvirtMachine
from vmcontainer.vm.qemu import QemuBackend, QemuMachine


def members(proto: type) -> dict[str, object]:
    return {k: v for k, v in vars(proto).items()
            if not k.startswith("_") and (callable(v) or isinstance(v, property))}


def params(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize(("proto", "impls"), [
    (Backend, (QemuBackend, LibvirtBackend)),
    (Machine, (QemuMachine, LibvirtMachine)),
])
def test_implementations_match_protocol(proto: type, impls: tuple[type, ...]) -> None:
    wanted = members(proto)
    assert {"start", "adopt", "alive", "discard", "status"} <= set(wanted) or \
        proto is Machine
    for impl in impls:
        for name, member in wanted.items():
            assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
            got = inspect.getattr_static(impl, name)
            if isinstance(member, property):
                # a property or a plain class attribute (``name = "qemu"``)
                assert isinstance(got, property | str), f"{impl.__name__}.{name}"
                continue
            assert params(got) == params(member), f"{impl.__name__}.{name}"
            assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(member), \
                f"{impl.__name__}.{name}: async mismatch"
