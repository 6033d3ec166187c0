"""Properties of the rule that weighs one place (a node, a zone) against cluster DNS.

When most failing applications sit on one node or in one zone, that place may be behind them
rather than cluster DNS. `_underlies` decides it from how many of them sit there and how many
applications sit there anyway. These properties hold for any cluster, so the rule cannot be a
fit to a handful of worlds: more failures on the place never make it less likely to underlie
them; a place where every application runs anyway is weaker evidence than a rare one; a DNS
hypothesis already standing is never easier to knock down than a new one is to refuse.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.core.inference import _underlies

counts = st.integers(min_value=1, max_value=200).flatmap(
    lambda failing: st.tuples(st.integers(min_value=0, max_value=failing), st.just(failing))
)
chances = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(counts, chances, st.booleans())
def test_fewer_than_two_thirds_on_one_place_never_underlie(count, chance, standing):
    there, failing = count
    if there * 3 < failing * 2:
        assert not _underlies(there, failing, chance, standing=standing)


@given(counts, chances, st.booleans())
def test_more_failures_on_the_place_never_make_it_less_of_a_cause(count, chance, standing):
    there, failing = count
    if there < failing and _underlies(there, failing, chance, standing=standing):
        assert _underlies(there + 1, failing, chance, standing=standing)


@given(counts, chances, chances, st.booleans())
def test_a_place_every_application_runs_on_anyway_is_weaker_evidence(count, one, other, standing):
    there, failing = count
    rare, common = sorted((one, other))
    if _underlies(there, failing, common, standing=standing):
        assert _underlies(there, failing, rare, standing=standing)


@given(counts, chances)
def test_a_standing_dns_hypothesis_is_harder_to_knock_down_than_a_new_one_to_refuse(count, chance):
    there, failing = count
    if _underlies(there, failing, chance, standing=True):
        assert _underlies(there, failing, chance, standing=False)


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0.0, max_value=0.99))
def test_every_failure_on_a_place_not_every_application_uses_points_at_it(failing, chance):
    assert _underlies(failing, failing, chance, standing=True)


def test_concentration_is_judged_against_chance():
    # Five of seven failing Services have an endpoint in a zone that 80% of all applications
    # use: no more than chance, so a standing DNS hypothesis stays (a new one would wait).
    assert not _underlies(5, 7, 0.8, standing=True)
    assert _underlies(5, 7, 0.8, standing=False)
    # The same five of seven on a node that 20% of applications use: that node it is.
    assert _underlies(5, 7, 0.2, standing=True)
