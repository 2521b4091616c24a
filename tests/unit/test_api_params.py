"""Request parsing shared by the API routes."""

from __future__ import annotations


def test_json_objects_match_keys_as_go_does() -> None:
    import json

    from vmcontainer.api.params import GoObject
    doc = json.loads('{"detachKeys": "ctrl-a", "Cmd": ["x"], "cmd": ["y"], "A": {"b": 1}}',
                     object_pairs_hook=GoObject)
    assert doc.get("DetachKeys") == "ctrl-a" and "DETACHKEYS" in doc
    assert doc["Cmd"] == ["x"]  # an exact match wins
    assert doc["a"]["B"] == 1 and doc.get("missing", 3) == 3 and "missing" not in doc
