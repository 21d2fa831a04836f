"""Statistics and verdicts for the benchmark: summaries with spread, ratios, targets met or not.

Everything here is pure (no clock, no Docker) so tests/bench can check it. Conventions:

* A `Summary` always carries the spread next to the median: min/max and the inter-quartile range.
* A ratio is `value / baseline` with both measured in the same benchmark run; it is `None` when either side
  is missing or the baseline is not positive, never a division error or an infinity.
* A `Target` is a comparison against a limit (`total <= 3 x bare`, `throughput >= 0.9 x direct`,
  `added < 5 ms`). `evaluate` says "met", "not met" or "not measured", never guesses.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "MET",
    "NOT_MEASURED",
    "NOT_MET",
    "Summary",
    "Target",
    "Verdict",
    "evaluate",
    "pairwise_differences",
    "percent",
    "ratio",
    "summarize",
]

MET = "met"
NOT_MET = "not met"
NOT_MEASURED = "not measured"

Op = Literal["<=", "<", ">=", ">", "=="]


@dataclass(frozen=True)
class Summary:
    """Median and spread of one series of measurements (same unit as the inputs)."""

    n: int
    median: float
    min: float
    max: float
    q1: float
    q3: float
    mean: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_json(self, digits: int = 4) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()
        }
        out["iqr"] = round(self.iqr, digits)
        return out

    def scaled(self, factor: float) -> Summary:
        """The same summary in another unit (e.g. seconds -> milliseconds)."""
        return Summary(
            self.n,
            self.median * factor,
            self.min * factor,
            self.max * factor,
            self.q1 * factor,
            self.q3 * factor,
            self.mean * factor,
        )


def summarize(values: Iterable[float]) -> Summary:
    """Median, min/max and quartiles (inclusive method: q1/q3 lie within min..max) of `values`.

    Raises ValueError for an empty series or a non-finite value: a benchmark that measured nothing, or
    measured garbage, must not print a number.
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("no measurements to summarize")
    bad = [v for v in data if not math.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite measurement(s): {bad[:3]}")
    if len(data) == 1:
        q1 = q3 = data[0]
    else:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    return Summary(
        n=len(data),
        median=statistics.median(data),
        min=min(data),
        max=max(data),
        q1=q1,
        q3=q3,
        mean=statistics.fmean(data),
    )


def ratio(value: float | None, baseline: float | None) -> float | None:
    """`value / baseline`, or None when it would be meaningless (missing value, baseline <= 0, NaN)."""
    if value is None or baseline is None:
        return None
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline <= 0:
        return None
    return value / baseline


@dataclass(frozen=True)
class Target:
    """A goal from the issues, e.g. `Target("warm.ratio", "warm total <= 3x bare docker run", "<=", 3.0)`."""

    id: str
    description: str
    op: Op
    limit: float
    unit: str = ""

    def holds(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        if self.op == ">=":
            return value >= self.limit
        if self.op == ">":
            return value > self.limit
        return value == self.limit

    def describe_limit(self) -> str:
        unit = f" {self.unit}" if self.unit and self.unit != "x" else ("x" if self.unit == "x" else "")
        return f"{self.op} {_num(self.limit)}{unit}"


@dataclass(frozen=True)
class Verdict:
    """Where one target stands after a run."""

    target: Target
    value: float | None
    status: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.target.id,
            "description": self.target.description,
            "op": self.target.op,
            "limit": self.target.limit,
            "unit": self.target.unit,
            "value": None if self.value is None else round(self.value, 4),
            "status": self.status,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        target = Target(
            str(data["id"]),
            str(data["description"]),
            data["op"],
            float(data["limit"]),
            str(data.get("unit", "")),
        )
        value = data.get("value")
        return cls(
            target, None if value is None else float(value), str(data["status"]), str(data.get("note", ""))
        )


def evaluate(target: Target, value: float | None, *, valid: bool = True, note: str = "") -> Verdict:
    """`met` / `not met` for a measured value; `not measured` when there is no value or it is not valid.

    `valid=False` is for a measurement that ran but cannot count (e.g. failures during the series): the
    value is kept for the record, the verdict is not given.
    """
    if value is None or not math.isfinite(value):
        return Verdict(target, None, NOT_MEASURED, note)
    if not valid:
        return Verdict(target, value, NOT_MEASURED, note)
    return Verdict(target, value, MET if target.holds(value) else NOT_MET, note)


def _num(value: float) -> str:
    return f"{value:g}"


def percent(part: float, whole: float) -> float | None:
    """`part / whole` in percent, or None."""
    r = ratio(part, whole)
    return None if r is None else r * 100.0


def pairwise_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Element-wise `a[i] - b[i]` over the shorter of the two series (interleaved runs, same rounds)."""
    return [x - y for x, y in zip(a, b, strict=False)]
