"""bench.stats: summaries with spread, ratios, targets and verdicts (pure, no Docker)."""

from __future__ import annotations

import math

import pytest

from bench.stats import (
    MET,
    NOT_MEASURED,
    NOT_MET,
    Summary,
    Target,
    Verdict,
    evaluate,
    pairwise_differences,
    percent,
    ratio,
    summarize,
)


def test_median_of_odd_and_even_series() -> None:
    assert summarize([3.0, 1.0, 2.0]).median == 2.0
    assert summarize([4.0, 1.0, 3.0, 2.0]).median == 2.5


def test_spread_min_max_and_inclusive_quartiles() -> None:
    s = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert (s.min, s.max) == (1, 9)
    assert (s.q1, s.q3) == (3, 7)
    assert s.iqr == 4
    assert s.n == 9
    assert s.mean == 5


def test_quartiles_stay_within_min_and_max_for_two_values() -> None:
    s = summarize([10.0, 20.0])
    assert s.min <= s.q1 <= s.median <= s.q3 <= s.max


def test_single_value_has_no_spread() -> None:
    s = summarize([0.25])
    assert (s.median, s.min, s.max, s.q1, s.q3, s.iqr) == (0.25, 0.25, 0.25, 0.25, 0.25, 0.0)


def test_outlier_moves_the_max_not_the_median() -> None:
    s = summarize([1.0, 1.1, 0.9, 1.0, 30.0])
    assert s.median == 1.0
    assert s.max == 30.0


def test_empty_or_non_finite_series_is_an_error_not_a_number() -> None:
    with pytest.raises(ValueError, match="no measurements"):
        summarize([])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, math.nan])
    with pytest.raises(ValueError, match="non-finite"):
        summarize([math.inf])


def test_summary_json_and_scaling() -> None:
    s = summarize([0.001, 0.002, 0.003])
    ms = s.scaled(1000)
    assert (ms.min, ms.median, ms.max) == pytest.approx((1.0, 2.0, 3.0))
    data = s.to_json()
    assert set(data) == {"n", "median", "min", "max", "q1", "q3", "mean", "iqr"}
    assert data["n"] == 3
    assert data["iqr"] == pytest.approx(data["q3"] - data["q1"])
    assert Summary(1, 2.0, 1.0, 3.0, 1.5, 2.5, 2.0).iqr == 1.0


def test_ratio() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(0.0, 2.0) == 0.0


@pytest.mark.parametrize(
    ("value", "baseline"),
    [(None, 1.0), (1.0, None), (1.0, 0.0), (1.0, -1.0), (math.nan, 1.0), (1.0, math.inf)],
)
def test_ratio_is_none_when_meaningless(value: float | None, baseline: float | None) -> None:
    assert ratio(value, baseline) is None


def test_percent_and_pairwise_differences() -> None:
    assert percent(45.0, 50.0) == pytest.approx(90.0)
    assert percent(1.0, 0.0) is None
    assert pairwise_differences([3.0, 5.0, 9.0], [1.0, 1.0]) == [2.0, 4.0]


@pytest.mark.parametrize(
    ("op", "limit", "value", "holds"),
    [
        ("<=", 3.0, 3.0, True),
        ("<=", 3.0, 3.01, False),
        ("<", 5.0, 5.0, False),
        ("<", 5.0, 4.99, True),
        (">=", 90.0, 90.0, True),
        (">=", 90.0, 89.9, False),
        (">", 0.0, 0.0, False),
        ("==", 0.0, 0.0, True),
        ("==", 0.0, 1.0, False),
    ],
)
def test_target_comparisons_at_the_boundary(op: str, limit: float, value: float, holds: bool) -> None:
    assert Target("t", "t", op, limit).holds(value) is holds  # type: ignore[arg-type]


def test_warm_target_met_and_not_met() -> None:
    target = Target("warm", "ours vs bare", "<=", 3.0, "x")
    assert evaluate(target, 2.9).status == MET
    assert evaluate(target, 3.0).status == MET
    assert evaluate(target, 14.0).status == NOT_MET


def test_throughput_and_latency_targets() -> None:
    throughput = Target("tp", "share of direct", ">=", 90.0, "%")
    latency = Target("lat", "added per request", "<", 5.0, "ms")
    assert evaluate(throughput, 62.4).status == NOT_MET
    assert evaluate(throughput, 95.0).status == MET
    assert evaluate(latency, 1.4).status == MET
    assert evaluate(latency, 5.0).status == NOT_MET


def test_no_value_or_invalid_series_is_not_measured_never_met() -> None:
    target = Target("warm", "ours vs bare", "<=", 3.0, "x")
    assert evaluate(target, None).status == NOT_MEASURED
    assert evaluate(target, math.nan).status == NOT_MEASURED
    v = evaluate(target, 1.0, valid=False, note="2 failed runs")
    assert v.status == NOT_MEASURED
    assert v.value == 1.0  # kept for the record
    assert v.note == "2 failed runs"


def test_verdict_json_round_trip() -> None:
    v = evaluate(Target("proxy.tp", "share", ">=", 90.0, "%"), 62.41234, note="median of 10")
    data = v.to_json()
    assert data["status"] == NOT_MET
    assert data["value"] == 62.4123
    back = Verdict.from_json(data)
    assert back.target == v.target
    assert back.status == v.status
    assert back.note == "median of 10"


def test_limit_description() -> None:
    assert Target("a", "a", "<=", 3.0, "x").describe_limit() == "<= 3x"
    assert Target("b", "b", "<", 5.0, "ms").describe_limit() == "< 5 ms"
    assert Target("c", "c", "==", 0.0).describe_limit() == "== 0"
