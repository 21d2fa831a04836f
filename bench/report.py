"""The benchmark's outputs: the Markdown table, the docs page's generated block, and the warm-start chart.

Rows are plain data (`Row`), built by each part from its measurements, so the table can be re-rendered
from a results JSON file (`python -m bench --report-only bench/results/latest.json`). Absolute times are
shown only beside the baseline they are compared with, and every row with a target says where it stands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .stats import MET, NOT_MEASURED, NOT_MET, Summary, Verdict

__all__ = [
    "BEGIN_MARK",
    "END_MARK",
    "Row",
    "fmt_bytes",
    "fmt_ms",
    "fmt_number",
    "fmt_ratio",
    "fmt_seconds",
    "fmt_summary",
    "markdown_table",
    "render_results",
    "render_rows",
    "render_targets",
    "update_doc",
    "warm_chart",
]

BEGIN_MARK = "<!-- bench:generated:begin (written by `python -m bench`; edits inside are overwritten) -->"
END_MARK = "<!-- bench:generated:end -->"

STATUS_ICON = {MET: "met", NOT_MET: "**NOT MET**", NOT_MEASURED: "not measured"}


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    part: str
    metric: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    status: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        ratio = data.get("ratio")
        return cls(
            part=str(data["part"]),
            metric=str(data["metric"]),
            value=str(data.get("value", "")),
            baseline=str(data.get("baseline", "")),
            ratio=None if ratio is None else float(ratio),
            target=str(data.get("target", "")),
            status=str(data.get("status", "")),
        )


# ------------------------------------------------------------------------------------------------ formatting


def fmt_seconds(seconds: float | None) -> str:
    """`0.262 s`, `4.10 s`, `73.4 s`: three significant digits, never scientific notation."""
    if seconds is None:
        return "n/a"
    if abs(seconds) < 1:
        return f"{seconds:.3f} s"
    if abs(seconds) < 10:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s"


def fmt_ms(ms: float | None) -> str:
    """`0.42 ms`, `3.1 ms`, `250 ms`."""
    if ms is None:
        return "n/a"
    if abs(ms) < 1:
        return f"{ms:.2f} ms"
    if abs(ms) < 100:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def fmt_ratio(value: float | None) -> str:
    """`15.8x`, `0.97x`; `n/a` when there is no ratio."""
    if value is None:
        return "n/a"
    if abs(value) < 10:
        return f"{value:.2f}x"
    return f"{value:.1f}x"


def fmt_number(value: float) -> str:
    """About three significant digits, never scientific notation: `1190`, `778`, `43.2`, `0.97`."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_bytes(n: float | None) -> str:
    """Binary units, three significant digits: `512 KiB`, `61.3 MiB`, `1.20 GiB`."""
    if n is None:
        return "n/a"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            v = n / size
            digits = 2 if v < 10 else 1 if v < 100 else 0
            return f"{v:.{digits}f} {unit}"
    return f"{n:.0f} B"


def fmt_summary(summary: Summary | Mapping[str, Any] | None, unit: str = "s") -> str:
    """`median (min–max)` in seconds (`unit="s"`), milliseconds (`"ms"`) or a plain number."""
    if summary is None:
        return "n/a"
    if isinstance(summary, Summary):
        med, lo, hi = summary.median, summary.min, summary.max
    else:
        med, lo, hi = float(summary["median"]), float(summary["min"]), float(summary["max"])
    fmt = {"s": fmt_seconds, "ms": fmt_ms}.get(unit)
    if fmt is None:
        return f"{fmt_number(med)} ({fmt_number(lo)}–{fmt_number(hi)}){' ' + unit if unit else ''}"
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub Markdown table; `|` in cells is escaped, newlines become spaces; rows are padded."""
    head = [_cell(h) for h in headers]
    body = [[_cell(c) for c in row] for row in rows]
    for row in body:
        if len(row) > len(head):
            raise ValueError(f"row has {len(row)} cells, table has {len(head)} columns: {row}")
        row.extend([""] * (len(head) - len(row)))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def render_rows(rows: Sequence[Row]) -> str:
    """The results table: one row per metric, absolute values beside their baseline, ratio, target, status."""
    return markdown_table(
        ["Part", "Metric", "Measured", "Baseline (same run)", "Ratio", "Target", "Status"],
        [
            [
                r.part,
                r.metric,
                r.value,
                r.baseline,
                fmt_ratio(r.ratio) if r.ratio is not None else "",
                r.target,
                STATUS_ICON.get(r.status, r.status),
            ]
            for r in rows
        ],
    )


def render_targets(verdicts: Sequence[Verdict]) -> str:
    """One bullet per target: met / NOT MET / not measured, with the value and the limit."""
    lines = []
    for v in verdicts:
        t = v.target
        value = "no value" if v.value is None else f"{v.value:.4g}{' ' + t.unit if t.unit else ''}"
        note = f" ({v.note})" if v.note else ""
        lines.append(
            f"- {STATUS_ICON.get(v.status, v.status)}: {t.description}: {value} "
            f"(target {t.describe_limit()}){note}"
        )
    return "\n".join(lines) if lines else "- no targets were evaluated in this run"


def render_results(results: Mapping[str, Any]) -> str:
    """The short Markdown report of one results file (machine line, table, targets, failed parts)."""
    rows = [Row.from_json(r) for part in results.get("parts", {}).values() for r in part.get("rows", [])]
    verdicts = [Verdict.from_json(v) for v in results.get("targets", [])]
    machine = results.get("machine", {})
    out = [
        f"Run {results.get('startedAt', '?')} on {machine_line(machine)}; "
        f"`{results.get('command', 'python -m bench')}`.",
        "",
        render_rows(rows) if rows else "_No measurements._",
        "",
        "Targets:",
        "",
        render_targets(verdicts),
    ]
    timing = [_part_timing(name, p) for name, p in results.get("parts", {}).items()]
    if timing:
        out += ["", "Time per part (1-minute load average at start → end): " + "; ".join(timing) + "."]
    failed = {name: p for name, p in results.get("parts", {}).items() if p.get("status") != "ok"}
    if failed:
        out += ["", "Parts that did not complete:", ""]
        out += [
            f"- {name}: {p.get('status')}: {p.get('error', '')}".rstrip(": ") for name, p in failed.items()
        ]
    return "\n".join(out) + "\n"


def _part_timing(name: str, part: Mapping[str, Any]) -> str:
    text = f"{name} {float(part.get('seconds', 0)):.0f} s"
    load = part.get("loadAverage") or {}
    if load.get("start") is not None and load.get("end") is not None:
        text += f" (load {load['start']:.1f} → {load['end']:.1f})"
    return text


def machine_line(machine: Mapping[str, Any]) -> str:
    """`2 cores (Intel ...), 23.5 GiB, Linux 6.1, Docker 20.10.24, Compose 2.40.3, cgroup v1`."""
    parts = []
    if machine.get("cpus"):
        model = f" ({machine['cpuModel']})" if machine.get("cpuModel") else ""
        parts.append(f"{machine['cpus']} cores{model}")
    if machine.get("memoryBytes"):
        parts.append(fmt_bytes(float(machine["memoryBytes"])) + " RAM")
    if machine.get("kernel"):
        parts.append(f"Linux {machine['kernel']}")
    if machine.get("os"):
        parts.append(str(machine["os"]))
    if machine.get("docker"):
        parts.append(f"Docker {machine['docker']}")
    if machine.get("compose"):
        parts.append(f"Compose {machine['compose']}")
    if machine.get("cgroup"):
        parts.append(f"cgroup {machine['cgroup']}")
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    return ", ".join(parts) or "an unknown machine"


def update_doc(text: str, generated: str) -> str:
    """Replace the generated block of docs/benchmarks.md (between the markers) with `generated`.

    Text outside the markers (methodology, analysis) is kept byte for byte. Without markers the block is
    appended, so a hand-written page never loses content.
    """
    block = f"{BEGIN_MARK}\n{generated.rstrip()}\n{END_MARK}"
    pattern = re.compile(re.escape(BEGIN_MARK) + r".*?" + re.escape(END_MARK), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    return f"{text}{sep}{block}\n"


# ------------------------------------------------------------------------------------------------ chart


def warm_chart(
    series: Mapping[str, Mapping[str, Any]],
    path: Path,
    *,
    title: str,
    target: tuple[str, float] | None = None,
) -> bool:
    """A bar chart (median, whiskers min..max) of warm-start time per flow; False when matplotlib is missing.

    `series` maps a label ("ours: total") to a Summary JSON (`median`, `min`, `max`); `target` draws a
    dashed line, e.g. `("target: 3x bare", 0.78)`.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = list(series)
    med = [float(series[k]["median"]) for k in labels]
    mins = [float(series[k]["min"]) for k in labels]
    maxs = [float(series[k]["max"]) for k in labels]
    lo = [m - x for m, x in zip(med, mins, strict=True)]
    hi = [x - m for m, x in zip(med, maxs, strict=True)]
    colors = ["#2b6cb0" if k.startswith("ours") else "#718096" if "bare" in k else "#c05621" for k in labels]
    fig, ax = plt.subplots(figsize=(9, 0.65 * len(labels) + 1.9), dpi=120)
    y = list(range(len(labels)))
    ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=4, height=0.6, error_kw={"elinewidth": 1})
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale); bar = median, whiskers = min–max")
    ax.set_title(title, fontsize=9, wrap=True)
    for yi, m, top in zip(y, med, maxs, strict=True):
        ax.text(top * 1.12, yi, f"median {fmt_seconds(m)}", va="center", fontsize=8)
    if target is not None:
        name, x = target
        ax.axvline(x, color="#2f855a", linestyle="--", linewidth=1)
        ax.text(x * 1.04, len(labels) - 0.45, name, color="#2f855a", fontsize=8, va="bottom")
    ax.set_xlim(min(mins) / 1.6, max(maxs) * 4)
    ax.grid(axis="x", which="both", alpha=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
