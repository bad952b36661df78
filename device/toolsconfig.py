"""``[[tools]]``: HTTP tools the model may call, read and checked (config.py's reader)."""

from __future__ import annotations

from typing import Any

from . import configcheck


def read_tools(self: Any, HttpToolConfig: Any) -> tuple[Any, ...]:
    """``self`` is config._Reader (data, fail, check); ``HttpToolConfig`` the class to build."""
    entries = self.data.get("tools", [])
    if not isinstance(entries, list):
        self.fail("[[tools]]", "declare each tool as a [[tools]] table")
    out = []
    for i, entry in enumerate(entries):
        where = f"[[tools]] #{i + 1}"
        if not isinstance(entry, dict):
            self.fail(where, "must be a table", fix="declare each tool as a [[tools]] table")
        for key in entry:
            if key not in ("name", "description", "url", "timeout", "parameters"):
                self.fail(f"{where} {key}", "unknown key; known: name, description, url, timeout, parameters")
        for key in ("name", "url"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                self.fail(f"{where} {key}", "is required (a string)")
        self.check(f"{where} name", configcheck.tool_name_problem(entry["name"]))
        self.check(f"{where} url", configcheck.url_problem(entry["url"], ("http", "https")))
        timeout = entry.get("timeout", 5.0)
        self.check(f"{where} timeout", configcheck.tool_timeout_problem(timeout))
        params = entry.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            self.fail(f"{where} parameters", "a JSON Schema object (a TOML table)")
        if not isinstance(entry.get("description", ""), str):
            self.fail(f"{where} description", "must be a string")
        out.append(HttpToolConfig(name=entry["name"], description=str(entry.get("description", "")),
                                  url=entry["url"], timeout=float(timeout), parameters=params))
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        self.fail("[[tools]] name", "tool names must be unique")
    return tuple(out)
