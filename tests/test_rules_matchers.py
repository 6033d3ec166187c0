"""Alertmanager matcher syntax: operators, anchoring, escapes, errors, and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.matchers import make_matcher, parse_matcher, parse_matchers, quote

LABELS = {"alertname": "KubeNodeNotReady", "node": "worker-1", "severity": "warning", "empty": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('alertname="KubeNodeNotReady"', True),
        ('alertname="KubeNodeNotReadyX"', False),
        ('alertname!="KubeNodeNotReady"', False),
        ('alertname!="Watchdog"', True),
        ('alertname=~"KubeNode.*"', True),
        ('alertname=~"Kube"', False),  # anchored: a prefix is not a match
        ('alertname=~"NodeNotReady"', False),  # anchored at the start too
        ('alertname!~"KubeNode.*"', False),
        ('alertname!~"Watchdog|TargetDown"', True),
        ('severity=~"warning|critical"', True),
        ('severity=~"critical|info"', False),
    ],
)
def test_each_operator(text, expected):
    assert parse_matcher(text).matches(LABELS) is expected


def test_missing_label_counts_as_empty():
    assert parse_matcher('team=""').matches(LABELS)
    assert not parse_matcher('team!=""').matches(LABELS)
    assert parse_matcher('team=~".*"').matches(LABELS)
    assert parse_matcher('team!~".+"').matches(LABELS)
    assert parse_matcher('empty=""').matches(LABELS)


def test_regex_is_fully_anchored_even_with_alternation():
    # Alertmanager compiles ^(?:a|b)$, not ^a|b$: "xb" must not match.
    matcher = parse_matcher('node=~"worker|1"')
    assert not matcher.matches({"node": "worker-1"})
    assert not matcher.matches({"node": "xworker"})
    assert matcher.matches({"node": "1"})
    assert not parse_matcher('node=~"w.*"').matches({"node": "worker\n"})


def test_whitespace_and_unquoted_values():
    assert parse_matcher("severity = critical").value == "critical"
    assert parse_matcher("  severity =~ warning|critical  ").literals == {"warning", "critical"}
    assert parse_matcher("a=b c").value == "b c"  # the rest of the text, trimmed, as Alertmanager reads it


def test_escapes_in_quoted_values():
    assert parse_matcher(r'a="say \"hi\""').value == 'say "hi"'
    assert parse_matcher(r'a="back\\slash"').value == "back\\slash"
    assert parse_matcher(r'a="tab\tnew\nline"').value == "tab\tnew\nline"
    assert parse_matcher(r'a="\u00e9\x41"').value == "éA"
    # A regex dot escaped for the regex engine: the YAML/Go string needs a double backslash.
    dotted = parse_matcher(r'name=~"kubelet\\.service"')
    assert dotted.matches({"name": "kubelet.service"})
    assert not dotted.matches({"name": "kubeletXservice"})


def test_quoted_label_name():
    assert parse_matcher('"service.name"="checkout"').name == "service.name"


def test_literal_alternations_are_indexable_and_regexes_are_not():
    assert parse_matcher('alertname="A"').literals == {"A"}
    assert parse_matcher('alertname=~"A|B|C"').literals == {"A", "B", "C"}
    assert parse_matcher(r'name=~"kubelet\\.service|x"').literals == {"kubelet.service", "x"}
    assert parse_matcher('alertname=~"Kube.*"').literals is None
    assert parse_matcher('alertname=~"A|B\\\\d"').literals is None  # \d is a class, not a literal
    assert parse_matcher('alertname!~"A|B"').literals is None  # negative: not an index key


def test_lists_of_matchers():
    matchers = parse_matchers('{alertname="TargetDown", job=~"kube-dns|coredns", }')
    assert [(m.name, m.op) for m in matchers] == [("alertname", "="), ("job", "=~")]
    assert [m.value for m in parse_matchers("a=1, b!=2")] == ["1", "2"]
    assert parse_matchers('a="x,y"')[0].value == "x,y"  # a comma inside quotes is part of the value


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected a label name at position 0"),
        ('="x"', "expected a label name at position 0"),
        ('alertname"x"', "expected one of =, !=, =~, !~ at position 9"),
        ('alertname="KubeNodeNotReady', "unterminated quoted string at position 10"),
        (r'a="\q"', "invalid escape \\q at position 3"),
        (r'a=~"foo\.bar"', "invalid escape \\. (write \\\\ for a regex backslash) at position 7"),
        ('a="x" b="y"', "unexpected text after the matcher at position 6"),
        ('alertname=~"Kube(Node"', "invalid regex"),
        ('alertname=~"*"', "invalid regex"),
    ],
)
def test_errors_name_the_matcher_and_the_position(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_matcher(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_list_errors():
    with pytest.raises(ValueError, match="expected ',' or '}'"):
        parse_matchers('{a="1" b="2"}')
    with pytest.raises(ValueError, match="no matcher"):
        parse_matchers("{}")


def test_equality_ignores_how_it_was_written():
    assert parse_matcher('a = "x"') == parse_matcher("a=x")
    assert parse_matcher('a="x"') != parse_matcher('a!="x"')
    assert hash(parse_matcher('a="x"')) == hash(parse_matcher("a=x"))


# -- properties --------------------------------------------------------------------------------

label_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
values = st.text(max_size=12)


@given(label_names, values, st.dictionaries(label_names, values, max_size=4))
def test_equal_and_not_equal_are_complements(name, value, labels):
    eq = make_matcher(name, "=", value)
    ne = make_matcher(name, "!=", value)
    assert eq.matches(labels) != ne.matches(labels)


@given(label_names, values, st.dictionaries(label_names, values, max_size=4))
def test_regex_and_negative_regex_are_complements(name, value, labels):
    pattern = re.escape(value) + "|x.*"
    assert make_matcher(name, "=~", pattern).matches(labels) != make_matcher(name, "!~", pattern).matches(
        labels
    )


@given(values, values)
def test_escaped_literal_regex_matches_exactly_the_value(value, other):
    matcher = make_matcher("a", "=~", re.escape(value))
    assert matcher.matches({"a": value})
    assert matcher.matches({"a": other}) == (other == value)
    # anchoring: surrounding text never matches
    assert not matcher.matches({"a": "x" + value})
    assert not matcher.matches({"a": value + "x"})


@given(st.lists(st.from_regex(r"[A-Za-z0-9_-]{0,6}", fullmatch=True), min_size=1, max_size=4), values)
def test_literal_fast_path_agrees_with_the_regex_engine(alternatives, candidate):
    pattern = "|".join(alternatives)
    matcher = make_matcher("a", "=~", pattern)
    assert matcher.literals is not None
    expected = re.fullmatch(f"(?:{pattern})", candidate) is not None
    assert matcher.matches({"a": candidate}) is expected
    assert make_matcher("a", "!~", pattern).matches({"a": candidate}) is not expected


@given(label_names, st.sampled_from(["=", "!=", "=~", "!~"]), values)
def test_printing_and_parsing_round_trips(name, op, value):
    try:
        original = make_matcher(name, op, value)
    except ValueError:
        return  # not a valid regex: nothing to round-trip
    assert parse_matcher(str(original)) == original
    assert str(original) == f"{name}{op}{quote(value)}"


def test_a_matcher_built_directly_is_compiled_too():
    from rules.matchers import Matcher

    matcher = Matcher("alertname", "=~", "A|B")
    assert matcher.matches({"alertname": "B"})
    assert matcher.literals == {"A", "B"}
    assert matcher == parse_matcher('alertname=~"A|B"')
