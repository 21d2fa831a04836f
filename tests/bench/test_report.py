"""bench.report: formatting, the Markdown table, the docs block, the report of a results file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.report import (
    BEGIN_MARK,
    END_MARK,
    Row,
    fmt_bytes,
    fmt_ms,
    fmt_ratio,
    fmt_seconds,
    fmt_summary,
    machine_line,
    markdown_table,
    render_results,
    render_rows,
    render_targets,
    update_doc,
    warm_chart,
)
from bench.stats import NOT_MEASURED, Target, evaluate, summarize


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2617, "0.262 s"), (4.1, "4.10 s"), (14.66, "14.7 s"), (None, "n/a")],
)
def test_fmt_seconds(seconds: float | None, text: str) -> None:
    assert fmt_seconds(seconds) == text


def test_fmt_ms_ratio_bytes() -> None:
    assert fmt_ms(0.421) == "0.42 ms"
    assert fmt_ms(3.14) == "3.1 ms"
    assert fmt_ms(250.4) == "250 ms"
    assert fmt_ratio(15.84) == "15.8x"
    assert fmt_ratio(0.974) == "0.97x"
    assert fmt_ratio(None) == "n/a"
    assert fmt_bytes(512 * 1024) == "512 KiB"
    assert fmt_bytes(126.3 * (1 << 20)) == "126 MiB"
    assert fmt_bytes(3.5 * (1 << 20)) == "3.50 MiB"
    assert fmt_bytes(12) == "12 B"


def test_fmt_summary_shows_median_and_spread() -> None:
    s = summarize([3.0, 4.0, 5.0])
    assert fmt_summary(s) == "4.00 s (3.00 s–5.00 s)"
    assert fmt_summary(s.scaled(1000), "ms") == "4000 ms (3000 ms–5000 ms)"
    assert fmt_summary({"median": 600, "min": 500, "max": 700}, "MB/s") == "600 (500–700) MB/s"
    assert fmt_summary(None) == "n/a"


def test_markdown_table_escapes_pipes_pads_rows_and_rejects_long_rows() -> None:
    table = markdown_table(["A", "B"], [["x|y", "line\nbreak"], ["only one"]])
    lines = table.splitlines()
    assert lines[0] == "| A | B |"
    assert lines[1] == "|---|---|"
    assert lines[2] == "| x\\|y | line break |"
    assert lines[3] == "| only one |  |"
    with pytest.raises(ValueError, match="3 cells"):
        markdown_table(["A", "B"], [["1", "2", "3"]])


def test_rows_table_shows_ratio_target_and_status() -> None:
    rows = [
        Row("warm", "total", "4.10 s", "bare: 0.26 s", 15.77, "<= 3x bare", "not met"),
        Row("proxy", "added", "1.4 ms", "", None, "< 5 ms", "met"),
        Row("runtime", "overhead", "4.5 ms"),
    ]
    table = render_rows(rows)
    assert "| warm | total | 4.10 s | bare: 0.26 s | 15.8x | <= 3x bare | **NOT MET** |" in table
    assert "| proxy | added | 1.4 ms |  |  | < 5 ms | met |" in table
    assert "| runtime | overhead | 4.5 ms |  |  |  |  |" in table


def test_row_json_round_trip() -> None:
    row = Row("cold", "built again", "0", "", None, "0", "met")
    assert Row.from_json(row.to_json()) == row


def test_targets_list_says_met_not_met_and_not_measured() -> None:
    text = render_targets(
        [
            evaluate(Target("w", "warm total vs bare", "<=", 3.0, "x"), 8.62),
            evaluate(Target("l", "added per request", "<", 5.0, "ms"), 1.36),
            evaluate(Target("c", "failures", "==", 0.0, "runs"), None),
        ]
    )
    lines = text.splitlines()
    assert lines[0].startswith("- **NOT MET**: warm total vs bare: 8.62 x (target <= 3x)")
    assert lines[1].startswith("- met: added per request: 1.36 ms (target < 5 ms)")
    assert lines[2].startswith(f"- {NOT_MEASURED}: failures: no value")
    assert render_targets([]) == "- no targets were evaluated in this run"


def _results() -> dict[str, Any]:
    verdict = evaluate(Target("warm.total_vs_bare", "warm total vs bare", "<=", 3.0, "x"), 8.6)
    return {
        "startedAt": "2026-01-01T00:00:00+00:00",
        "command": "python -m bench --runs 10",
        "machine": {
            "cpus": 2,
            "memoryBytes": 24 << 30,
            "kernel": "6.1",
            "docker": "20.10.24",
            "cgroup": "v1",
        },
        "parts": {
            "warm": {
                "status": "ok",
                "seconds": 300,
                "loadAverage": {"start": 1.5, "end": 2.0},
                "rows": [
                    Row("warm", "total", "4.10 s", "bare: 0.26 s", 15.8, "<= 3x bare", "not met").to_json(),
                ],
            },
            "proxy": {"status": "failed", "seconds": 3, "error": "no network", "rows": []},
        },
        "targets": [verdict.to_json()],
    }


def test_report_of_a_results_file() -> None:
    text = render_results(_results())
    assert "2 cores, 24.0 GiB RAM, Linux 6.1, Docker 20.10.24, cgroup v1" in text
    assert "`python -m bench --runs 10`" in text
    assert "| warm | total | 4.10 s | bare: 0.26 s | 15.8x | <= 3x bare | **NOT MET** |" in text
    assert "- **NOT MET**: warm total vs bare: 8.6 x (target <= 3x)" in text
    assert "warm 300 s (load 1.5 → 2.0); proxy 3 s" in text
    assert "- proxy: failed: no network" in text


def test_machine_line_of_an_empty_description() -> None:
    assert machine_line({}) == "an unknown machine"


def test_update_doc_replaces_only_the_generated_block() -> None:
    doc = f"# Title\n\nintro\n\n{BEGIN_MARK}\nold table\n{END_MARK}\n\n## Analysis\nkept\n"
    new = update_doc(doc, "new table\n")
    assert "old table" not in new
    assert f"{BEGIN_MARK}\nnew table\n{END_MARK}" in new
    assert new.startswith("# Title\n\nintro\n\n")
    assert new.endswith("\n\n## Analysis\nkept\n")
    assert update_doc(new, "new table\n") == new  # idempotent


def test_update_doc_appends_when_there_are_no_markers() -> None:
    assert update_doc("", "t") == f"{BEGIN_MARK}\nt\n{END_MARK}\n"
    assert update_doc("# Doc\n", "t") == f"# Doc\n\n{BEGIN_MARK}\nt\n{END_MARK}\n"


def test_update_doc_keeps_backslashes_in_the_new_block() -> None:
    new = update_doc(f"{BEGIN_MARK}\nx\n{END_MARK}\n", "a \\| b \\1")
    assert "a \\| b \\1" in new


def test_warm_chart_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    series = {
        "ours: total": summarize([3.1, 3.2, 3.6]).to_json(),
        "bare docker run --rm IMAGE true": summarize([0.25, 0.3]).to_json(),
        "reference flow: total": summarize([14.3, 14.8]).to_json(),
    }
    path = tmp_path / "chart.png"
    assert warm_chart(series, path, title="test")
    assert path.read_bytes().startswith(b"\x89PNG")
