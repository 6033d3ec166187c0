"""A streaming parser of the Prometheus text exposition format (what `/metrics` prints).

Handles `# HELP` / `# TYPE` lines and other comments, blank lines, labels in any order, escaped
label values (`\\\\`, `\\"`, `\\n`), `NaN` / `+Inf` / `-Inf` values and optional millisecond
timestamps. It yields `(metric_name, labels, value, line_number)`.

Speed matters: a kube-state-metrics dump of a large cluster has millions of lines and the loader
needs a few families only. With `wanted`, a line whose metric name is not wanted is dropped after
one `str.find` and one set lookup, before any label is looked at; such lines are therefore not
validated. A `prefilter` predicate per family can drop more lines on their raw text (KSM prints
a 0/1 series per phase or condition; only some matter). A line without backslashes is split on
its quotes in one C call; other lines (escapes, blanks between tokens, errors) go through a
hand-written tokenizer built on `str.find` that also words the error messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from pathlib import Path

from ground.errors import InputError

Series = tuple[str, dict[str, str], float, int]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
# A sample line as the format detector accepts it: a metric name, then labels or a value.
_SAMPLE_START = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{|[ \t]+\S)")
# The label names of a plain line, joined: `a=,b=,c=` (the `"`-separated parts between values).
_PLAIN_KEYS = re.compile(r"(?:[a-zA-Z_][a-zA-Z0-9_]*=,)*[a-zA-Z_][a-zA-Z0-9_]*=\Z")
_COMMON_TAILS = {"} 1\n": 1.0, "} 0\n": 0.0, "} 1": 1.0, "} 0": 0.0}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class _LineError(Exception):
    """What is wrong with one line; the caller adds file and line number."""


def parse_lines(
    lines: Iterable[str],
    source: str = "<input>",
    wanted: Container[str] | None = None,
    prefilter: Mapping[str, Callable[[str], bool]] | None = None,
) -> Iterator[Series]:
    """Parse exposition text line by line; a malformed line raises InputError(`source:line: ...`).

    `wanted`: only these metric names are parsed and yielded (None: all of them).
    `prefilter`: metric name -> predicate on the raw line; a line it rejects is skipped unparsed
    (e.g. `lambda line: not line.endswith("} 0\\n")` for a family where only 1 matters).
    """
    filters = prefilter or {}
    # `name{` of the last family skipped: KSM prints a family's lines together, so most skipped
    # lines are recognised by one startswith.
    skipping = "\0"
    for number, line in enumerate(lines, 1):
        if line.startswith(skipping) or not line:
            continue
        first = line[0]
        if first == "#":
            continue
        if first in " \t\r\n":
            line = line.lstrip()
            if not line or line[0] == "#":
                continue
        brace = line.find("{")
        if brace >= 0:
            name = line[:brace]
            if wanted is not None and name not in wanted:
                # `name {` (a blank before the brace) is legal but rare: strip only then.
                name = name.rstrip()
                if name not in wanted:
                    skipping = line[: brace + 1]
                    continue
        else:
            name = line.split(None, 1)[0]
            if wanted is not None and name not in wanted:
                continue
        keep = filters.get(name)
        if keep is not None and not keep(line):
            continue
        labels = None
        if brace > 0 and line.find("\\", brace) < 0 and (wanted is not None or _METRIC_NAME.match(name)):
            labels, value = _parse_plain(line, brace)
        if labels is None:
            try:
                labels, value = _parse_sample(line, name, brace)
            except _LineError as exc:
                raise InputError(f"{source}:{number}: {exc}") from None
            name = name.rstrip()
        yield name, labels, value, number


def parse_file(
    path: str | Path,
    wanted: Container[str] | None = None,
    prefilter: Mapping[str, Callable[[str], bool]] | None = None,
) -> Iterator[Series]:
    """Parse an exposition file; errors name the file and line."""
    source = str(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            yield from parse_lines(handle, source, wanted, prefilter)
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def _parse_plain(line: str, brace: int) -> tuple[dict[str, str] | None, float]:
    """Fast path for a canonical line without backslashes (`name{a="1",b="2"} 1`): every `"`
    delimits a value, so one split finds them all. Anything unusual (blanks between tokens, a
    malformed line) returns None and goes to the full tokenizer, which also words the errors."""
    parts = line[brace + 1 :].split('"')
    count = len(parts)
    if count < 3 or not count & 1:
        return None, 0.0
    keys = "".join(parts[0 : count - 1 : 2])
    if not _PLAIN_KEYS.match(keys):
        return None, 0.0
    names = keys[:-1].split("=,")
    labels = dict(zip(names, parts[1::2], strict=True))
    if len(labels) != len(names):
        return None, 0.0
    tail = parts[-1]
    value = _COMMON_TAILS.get(tail)
    if value is not None:
        return labels, value
    if tail.startswith("}"):
        tail = tail[1:]
    elif tail.startswith(",}"):
        tail = tail[2:]
    else:
        return None, 0.0
    try:
        return labels, _parse_value(tail)
    except _LineError:
        return None, 0.0


def looks_like_exposition(head: str) -> bool:
    """Whether text (the start of a file) is Prometheus text exposition.

    A `# HELP` or `# TYPE` line decides at once; other comments are skipped (YAML has them too);
    otherwise the first other line must be `name{...` or `name <number>`.
    """
    for raw in head.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(("# HELP ", "# TYPE ")):
                return True
            continue
        match = _SAMPLE_START.match(line)
        if not match:
            return False
        if match.group(1) == "{":
            return True
        parts = line.split()
        if len(parts) not in (2, 3):
            return False
        try:
            float(parts[1])
        except ValueError:
            return False
        return True
    return False


def _parse_sample(line: str, name: str, brace: int) -> tuple[dict[str, str], float]:
    labels: dict[str, str] = {}
    if brace < 0:
        rest = line.split(None, 1)
        if not _METRIC_NAME.match(name):
            raise _LineError(f"invalid metric name {name!r}")
        return labels, _parse_value(rest[1] if len(rest) > 1 else "")
    name = name.rstrip()
    if not _METRIC_NAME.match(name):
        raise _LineError(f"invalid metric name {name!r}" if name else "missing metric name before '{'")
    find = line.find
    pos = brace + 1
    end_of_labels = -1
    while True:
        # A label: name = "value", then ',' or '}'. A trailing comma before '}' is allowed.
        while line[pos : pos + 1] in (" ", "\t"):
            pos += 1
        if line[pos : pos + 1] == "}":
            end_of_labels = pos
            break
        equals = find("=", pos)
        if equals < 0:
            raise _LineError(f'expected label="value" after column {pos}, found {line[pos:].strip()!r}')
        label = line[pos:equals].strip()
        if not label.isidentifier() or not label.isascii():
            raise _LineError(f"invalid label name {label!r}")
        quote = equals + 1
        while line[quote : quote + 1] in (" ", "\t"):
            quote += 1
        if line[quote : quote + 1] != '"':
            raise _LineError(f"value of label {label!r} must be in double quotes")
        start = quote + 1
        close = find('"', start)
        if close < 0:
            raise _LineError(f"unterminated value of label {label!r}")
        if find("\\", start, close) >= 0:
            value, close = _unescape(line, start, label)
        else:
            value = line[start:close]
        if label in labels:
            raise _LineError(f"duplicate label {label!r}")
        labels[label] = value
        pos = close + 1
        while line[pos : pos + 1] in (" ", "\t"):
            pos += 1
        separator = line[pos : pos + 1]
        if separator == ",":
            pos += 1
        elif separator == "}":
            end_of_labels = pos
            break
        else:
            found = repr(separator) if separator.strip() else "end of line"
            raise _LineError(f"expected ',' or '}}' after label {label!r}, found {found}")
    return labels, _parse_value(line[end_of_labels + 1 :])


def _unescape(line: str, start: int, label: str) -> tuple[str, int]:
    """Decode an escaped label value from `start`; returns it and the index of its closing quote."""
    out: list[str] = []
    i = start
    size = len(line)
    while i < size:
        char = line[i]
        if char == "\\":
            if i + 1 >= size or line[i + 1] in "\r\n":
                break
            following = line[i + 1]
            # Unknown escapes are kept verbatim, as Prometheus does.
            out.append(_ESCAPES.get(following, "\\" + following))
            i += 2
        elif char == '"':
            return "".join(out), i
        else:
            out.append(char)
            i += 1
    raise _LineError(f"unterminated value of label {label!r}")


def _parse_value(text: str) -> float:
    parts = text.split()
    if not parts:
        raise _LineError("missing sample value")
    if len(parts) > 2:
        raise _LineError(f"unexpected text after the value: {' '.join(parts[2:])!r}")
    try:
        value = float(parts[0])
    except ValueError:
        raise _LineError(f"invalid sample value {parts[0]!r}") from None
    if "_" in parts[0]:
        # Python's float() accepts digit separators; the exposition format does not.
        raise _LineError(f"invalid sample value {parts[0]!r}")
    if len(parts) == 2:
        stamp = parts[1]
        if not stamp.lstrip("-").isdigit():
            raise _LineError(f"invalid timestamp {stamp!r}")
    return value
