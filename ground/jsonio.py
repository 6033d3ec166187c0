"""JSON in and out. `loads` is the one JSON reader for what comes from outside: webhook and
API bodies, Slack's interaction payloads, Alertmanager's API, and the recorded lines read back by
the rebuild at start and by `replay`. One parser with one strictness, so that whatever the
service accepted and stored, the rebuild reads back the same way. `canonical_json` writes every
line the router writes."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic_core import from_json

from ground.errors import InputError

MAX_JSON_DEPTH = 200  # jiter's recursion limit


MAX_INT_DIGITS = 4300  # jiter's, and Python's int/str conversion limit


_WHERE = re.compile(r" at line (\d+) column (\d+)$")


_SURROGATE = re.compile("[\ud800-\udfff]")


# jiter's messages for a \u escape that is half of a surrogate pair.
_SURROGATE_ERRORS = ("unexpected end of hex escape", "lone leading surrogate in hex escape")


class JsonError(InputError):
    """Input that is not acceptable JSON. `field` is the dotted path of the offending value (or
    of the object holding an offending key) when it can be told, else `(body)`."""

    def __init__(self, problem: str, field: str = "(body)") -> None:
        super().__init__(problem if field == "(body)" else f"{field}: {problem}")
        self.problem = problem
        self.field = field


def loads(data: str | bytes) -> Any:
    """JSON text (bytes: UTF-8) -> value, with pydantic-core's parser (jiter, the one pydantic
    validates JSON with) and NaN/Infinity refused. Unlike Python's `json.loads` it refuses, with
    the place named (JsonError):
    - a lone UTF-16 surrogate escape (`"\\ud800"`) in a key or a value: not Unicode text, which
      SQLite cannot store;
    - nesting deeper than MAX_JSON_DEPTH levels (`json.loads` recurses into a RecursionError);
    - an integer of more than MAX_INT_DIGITS digits (`json.loads` raises a bare ValueError);
    and, like it, malformed JSON, trailing data and raw control characters in strings."""
    try:
        return from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        raise _json_error(str(exc), data) from None


def _json_error(message: str, data: str | bytes) -> JsonError:
    found = _WHERE.search(message)
    where = f" at line {found.group(1)} column {found.group(2)}" if found else ""
    what = message[: found.start()] if found else message
    if what == "recursion limit exceeded":
        return JsonError(f"nested deeper than {MAX_JSON_DEPTH} levels{where}")
    if what == "number out of range":
        return JsonError(f"an integer of more than {MAX_INT_DIGITS} digits{where}")
    if what in _SURROGATE_ERRORS:
        located = _locate_surrogate(data)
        if located is None:
            return JsonError(f"a lone UTF-16 surrogate escape is not Unicode text{where}")
        field, char = located
        return JsonError(f"a lone UTF-16 surrogate (\\u{ord(char):04x}) is not Unicode text{where}", field)
    return JsonError(f"malformed JSON: {message}")


def _locate_surrogate(data: str | bytes) -> tuple[str, str] | None:
    """(path, character) of the first lone surrogate, read with the lenient `json.loads`: only
    on this error path, for the field name. None when even that reader cannot tell."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("(body)", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return path, found.group()
        elif isinstance(value, dict):
            for key in value:
                found = _SURROGATE.search(key)
                if found:  # a key cannot be named by a path: the object holding it is
                    return path, found.group()
            stack.extend(reversed([(_join(path, key), item) for key, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(_join(path, str(i)), item) for i, item in enumerate(value)]))
    return None


def _join(path: str, key: str) -> str:
    return key if path == "(body)" else f"{path}.{key}"


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON used for every line the router writes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
