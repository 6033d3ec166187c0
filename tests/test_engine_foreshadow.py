"""A failure foretold: held error rates wait for the failure a prediction announces.

A node whose disk fills slows the applications on it half an hour before
`NodeFilesystemAlmostOutOfSpace` (`for: 30m`) fires; all that shows by then is the prediction
`NodeFilesystemSpaceFillingUp`, which breaks nothing and so explains nothing. For any timing:
while that prediction fires under a Service's endpoint, the Service's held latency waits
`foreshadow_wait` past its due; a full disk arriving within that wait takes it as a symptom and
one page names the node; none arriving, the Service pages at the wait's end. Without the
prediction an error rate waits no longer than before.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.engine import Engine
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, run, small_cluster

RULES = RuleSet.load()
HOLD = RULES.classify(
    {"alertname": "LatencyHigh", "namespace": "shop", "service": "checkout"}, small_cluster()
).hold
WAIT = EngineSettings().foreshadow_wait
NODE = "node/default/w0"  # runs one of shop/checkout's two endpoints (10.0.0.10)


def _storm(
    predicted: bool, full_after: float | None, latency_at: float, alertname: str = "LatencyHigh"
) -> Stream:
    """The latency fires at `latency_at`; the prediction has fired since minute 0; the full
    disk `full_after` minutes after the latency (never when None)."""
    s = Stream()
    disk = {"instance": "10.0.0.10:9100", "job": "node-exporter", "namespace": "monitoring"}
    latency = alert("lat", latency_at, alertname=alertname, namespace="shop", service="checkout")
    if predicted:
        s.deliver(0.5, [alert("fill", 0, alertname="NodeFilesystemSpaceFillingUp", **disk)])
    s.deliver(latency_at + 0.5, [latency])
    if full_after is not None:
        s.deliver(
            latency_at + full_after + 0.5,
            [alert("full", latency_at + full_after, alertname="NodeFilesystemAlmostOutOfSpace", **disk)],
        )
    return s


def _pages(notes) -> list:
    return [n for n in notes if n.action == "page"]


minutes = st.floats(min_value=1, max_value=40, allow_nan=False).map(lambda m: round(m, 1))
hold_minutes = HOLD.total_seconds() / 60
wait_minutes = WAIT.total_seconds() / 60


@settings(max_examples=40, deadline=None)
@given(latency_at=minutes, full_after=st.floats(min_value=0, max_value=60).map(lambda m: round(m, 1)))
def test_a_full_disk_foretold_takes_the_latency_it_caused(latency_at, full_after):
    notes = run(Engine(small_cluster(), RULES), _storm(True, full_after, latency_at), until=latency_at + 120)
    pages = _pages(notes)
    due = hold_minutes + 0.5  # delivered half a minute after it fired
    if full_after + 0.5 < due + wait_minutes:
        # The failure came while the latency waited: one page, on the node.
        assert [p.root_entity for p in pages] == [NODE]
        assert any(s.entity == "service/default/shop/checkout" for s in pages[0].symptoms)
    else:
        # It did not come in time: the latency paged on its own when the wait ran out.
        first = pages[0]
        assert first.root_entity == "service/default/shop/checkout"
        assert first.at == at(latency_at + due) + WAIT


@settings(max_examples=20, deadline=None)
@given(latency_at=minutes)
def test_nothing_foretold_nothing_waits_longer(latency_at):
    # An error rate: a Service only slow waits on its own (tests/test_engine_slow_alone.py).
    storm = _storm(False, None, latency_at, alertname="HighErrorRate")
    notes = run(Engine(small_cluster(), RULES), storm, until=latency_at + 120)
    pages = _pages(notes)
    assert [p.root_entity for p in pages] == ["service/default/shop/checkout"]
    assert pages[0].at == at(latency_at + 0.5) + HOLD


@settings(max_examples=20, deadline=None)
@given(latency_at=minutes)
def test_a_prediction_never_hides_what_fails_beside_it(latency_at):
    """No full disk ever comes: the latency still pages, only later."""
    notes = run(Engine(small_cluster(), RULES), _storm(True, None, latency_at), until=latency_at + 120)
    assert [p.root_entity for p in _pages(notes)] == ["service/default/shop/checkout"]
