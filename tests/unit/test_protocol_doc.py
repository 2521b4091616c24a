"""guest/PROTOCOL.md is the contract: its constants must match both sides."""

from __future__ import annotations

import re
from pathlib import Path

from vmcontainer.guestlink import protocol as py

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "guest" / "PROTOCOL.md").read_text()
HEADER = (ROOT / "guest" / "protocol.h").read_text()


def doc_types() -> dict[str, int]:
    return {name: int(code, 16)
            for code, name in re.findall(r"^\| (0x[0-9a-f]{2}) \| `([A-Z_]+)`", DOC, re.M)}


def test_doc_lists_every_python_type_with_the_same_code() -> None:
    assert doc_types() == {t.name: t.value for t in py.MsgType}


def test_c_header_has_the_same_codes() -> None:
    c_types = {m.group(1): int(m.group(2), 16)
               for m in re.finditer(r"#define VMC_MSG_([A-Z_]+) (0x[0-9a-f]+)", HEADER)}
    assert c_types == doc_types()


def test_limits_and_names_agree() -> None:
    assert f"#define VMC_PROTOCOL_VERSION {py.PROTOCOL_VERSION}" in HEADER
    assert f'#define VMC_AGENT_PORT_NAME "{py.PORT_NAME}"' in HEADER
    assert re.search(rf"#define VMC_MAX_PAYLOAD {py.MAX_PAYLOAD}u?\b", HEADER)
    assert f"`length` is at most {py.MAX_PAYLOAD}" in DOC
    assert py.PORT_NAME in DOC
    assert py.HEADER.size == 8 and "#define VMC_HEADER_SIZE 8" in HEADER
    assert re.search(rf"#define VMC_MAX_HOST_PAYLOAD {py.MAX_HOST_PAYLOAD}u?\b", HEADER)
    assert f"payload is at most {py.MAX_HOST_PAYLOAD} bytes" in DOC


def test_config_version_agrees() -> None:
    from vmcontainer.guestlink.configdisk import CONFIG_VERSION
    assert f"#define VMC_CONFIG_VERSION {CONFIG_VERSION}" in HEADER
    assert f'  "version": {CONFIG_VERSION},' in DOC
