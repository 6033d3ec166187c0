"""Alertmanager label matchers: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`.

The syntax is Alertmanager's (`amtool`, `matchers:` in routes and inhibit rules):

- the label name is unquoted (`[A-Za-z_][A-Za-z0-9_]*`), or double-quoted for UTF-8 names;
- the value is double-quoted with Go string escapes (`\\"`, `\\\\`, `\\n`, `\\t`, `\\xHH`, `\\uHHHH` ...),
  or unquoted (taken verbatim up to the end, or up to `,`/`}` inside a `{...}` list);
- regexes are fully anchored, as Alertmanager compiles them: `^(?:regex)$`;
- a missing label counts as the empty string, so `team=""` matches alerts without `team` and
  `team!=""` requires it.

`parse_matchers` also reads a list: `{alertname="X", severity=~"warning|critical"}` (braces
optional). Errors raise ValueError naming the matcher text and the 0-based position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

OPERATORS = ("=~", "!~", "!=", "=")  # longest first: `=~` must not be read as `=`
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REGEX_META = frozenset(".^$*+?{}[]()|\\")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}


@dataclass(frozen=True, slots=True)
class Matcher:
    """One compiled matcher. Two matchers are equal when name, operator and value are."""

    name: str
    op: str
    value: str
    # Literal values a `=` or `=~"A|B|C"` matcher accepts; None when it is a real regex or a
    # negative matcher. Used to index rules by alertname.
    literals: frozenset[str] | None = field(default=None, compare=False, repr=False)
    test: Callable[[str], bool] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        # Built directly rather than by make_matcher/parse_matcher: compile it now.
        if self.test is None:
            compiled = make_matcher(self.name, self.op, self.value)
            object.__setattr__(self, "literals", compiled.literals)
            object.__setattr__(self, "test", compiled.test)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.test(labels.get(self.name, ""))

    def __str__(self) -> str:
        return f"{self.name}{self.op}{quote(self.value)}"


def quote(value: str) -> str:
    """A value as a double-quoted Alertmanager string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _not_in(accepted: frozenset[str], value: str) -> bool:
    return value not in accepted


def _matches(fullmatch: Callable[[str], re.Match[str] | None], value: str) -> bool:
    return fullmatch(value) is not None


def _misses(fullmatch: Callable[[str], re.Match[str] | None], value: str) -> bool:
    return fullmatch(value) is None


def make_matcher(name: str, op: str, value: str, *, text: str | None = None, value_pos: int = 0) -> Matcher:
    """Compile one matcher; `text`/`value_pos` only improve the error message of a bad regex."""
    if op not in OPERATORS:
        raise ValueError(f"unknown matcher operator {op!r} (use =, !=, =~ or !~)")
    literals: frozenset[str] | None = None
    test: Callable[[str], bool]
    if op == "=":
        literals = frozenset((value,))
        test = value.__eq__
    elif op == "!=":
        test = value.__ne__
    else:
        alternatives = _literal_alternatives(value)
        if alternatives is not None:
            accepted = frozenset(alternatives)
            if op == "=~":
                literals = accepted
                test = accepted.__contains__
            else:
                test = partial(_not_in, accepted)
        else:
            try:
                pattern = re.compile(f"(?:{value})")
            except re.error as exc:
                # exc.pos counts the `(?:` we added in front.
                where = f" at position {value_pos + max(0, exc.pos - 3)}" if exc.pos is not None else ""
                shown = text if text is not None else f"{name}{op}{quote(value)}"
                raise ValueError(f"invalid regex in matcher {shown!r}: {exc.msg}{where}") from None
            fullmatch = pattern.fullmatch
            test = partial(_matches, fullmatch) if op == "=~" else partial(_misses, fullmatch)
    return Matcher(name, op, value, literals, test)


def parse_matcher(text: str) -> Matcher:
    """Exactly one matcher, e.g. `alertname="KubeNodeNotReady"` or `severity =~ warning|critical`."""
    parser = _Parser(text)
    parser.skip_space()
    matcher = parser.matcher(in_list=False)
    parser.skip_space()
    if not parser.at_end():
        parser.fail("unexpected text after the matcher")
    return matcher


def parse_matchers(text: str) -> list[Matcher]:
    """One matcher or a comma-separated list, optionally in braces: `{a="1", b=~"2|3"}`."""
    parser = _Parser(text)
    parser.skip_space()
    braced = parser.peek() == "{"
    if braced:
        parser.pos += 1
    matchers: list[Matcher] = []
    while True:
        parser.skip_space()
        if braced and parser.peek() == "}" and not matchers:
            break  # `{}` is an empty list
        matchers.append(parser.matcher(in_list=True))
        parser.skip_space()
        if parser.peek() == ",":
            parser.pos += 1
            parser.skip_space()
            if braced and parser.peek() == "}":
                break  # trailing comma
            if parser.at_end() and not braced:
                break
            continue
        break
    if braced:
        if parser.peek() != "}":
            parser.fail("expected ',' or '}'")
        parser.pos += 1
        parser.skip_space()
    if not parser.at_end():
        parser.fail("expected ',' between matchers" if not braced else "unexpected text after '}'")
    if not matchers:
        parser.fail("no matcher")
    return matchers


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"a matcher must be a string, got {type(text).__name__}: {text!r}")
        self.text = text
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> None:
        where = self.pos if pos is None else pos
        raise ValueError(f"invalid matcher {self.text!r}: {message} at position {where}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def matcher(self, *, in_list: bool) -> Matcher:
        name = self.label_name()
        self.skip_space()
        op = next((o for o in OPERATORS if self.text.startswith(o, self.pos)), None)
        if op is None:
            self.fail("expected one of =, !=, =~, !~")
        assert op is not None
        self.pos += len(op)
        self.skip_space()
        quoted = self.peek() == '"'
        value_pos = self.pos + (1 if quoted else 0)  # where the regex text starts, for errors
        value = self.quoted() if quoted else self.unquoted(in_list=in_list)
        return make_matcher(name, op, value, text=self.text, value_pos=value_pos)

    def label_name(self) -> str:
        if self.peek() == '"':
            start = self.pos
            name = self.quoted()
            if not name:
                self.fail("empty label name", start)
            return name
        found = _NAME.match(self.text, self.pos)
        if found is None:
            self.fail("expected a label name")
        assert found is not None
        self.pos = found.end()
        return found.group()

    def unquoted(self, *, in_list: bool) -> str:
        start = self.pos
        end = len(self.text)
        if in_list:
            # Inside a list an unquoted value runs to the next `,` or `}`.
            stops = [i for i in (self.text.find(",", start), self.text.find("}", start)) if i >= 0]
            end = min(stops) if stops else end
        value = self.text[start:end].rstrip()
        if '"' in value:
            self.fail("unbalanced quote in unquoted value", start + value.index('"'))
        self.pos = start + len(value)
        return value

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1  # opening quote
        out: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                self.fail("unterminated quoted string", start)
            ch = text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                out.append(self.escape())
                continue
            out.append(ch)
            self.pos += 1

    def escape(self) -> str:
        start = self.pos
        code = self.text[self.pos + 1 : self.pos + 2]
        if code in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[code]
        widths = {"x": 2, "u": 4, "U": 8}
        if code in widths:
            digits = self.text[self.pos + 2 : self.pos + 2 + widths[code]]
            if len(digits) == widths[code] and all(c in "0123456789abcdefABCDEF" for c in digits):
                self.pos += 2 + widths[code]
                return chr(int(digits, 16))
        elif code and code in "01234567":
            digits = self.text[self.pos + 1 : self.pos + 4]
            if len(digits) == 3 and all(c in "01234567" for c in digits):
                self.pos += 4
                return chr(int(digits, 8))
        hint = " (write \\\\ for a regex backslash)" if code and not code.isalnum() else ""
        self.fail(f"invalid escape \\{code}{hint}", start)
        return ""  # unreachable


def _literal_alternatives(regex: str) -> list[str] | None:
    """`A|B|C` made only of literal text (escaped punctuation allowed) -> [A, B, C]; else None."""
    alternatives: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            nxt = regex[i + 1 : i + 2]
            if not nxt or nxt.isalnum() or nxt == "_":
                return None  # \d, \w, \b ... are classes or assertions, not literals
            current.append(nxt)
            i += 2
            continue
        if ch == "|":
            alternatives.append("".join(current))
            current = []
        elif ch in _REGEX_META:
            return None
        else:
            current.append(ch)
        i += 1
    alternatives.append("".join(current))
    return alternatives
