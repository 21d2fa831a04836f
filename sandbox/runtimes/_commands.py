"""Bodies of `sandbox runtimes` and `sandbox compare`, for the CLI to wire up.

The CLI module parses arguments and calls these; they return (exit code, text for stdout). Kept here so
the command logic is testable without Typer and the formatting lives next to the data it formats.
`--json` output is plain `json.dumps(..., indent=2)` of the rows, nothing else on stdout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from . import compare, list_runtimes, registry
from ._base import Emit, RuntimeInfo
from ._compare import CompareRow

if TYPE_CHECKING:
    from sandbox.options import RunOptions

__all__ = [
    "compare_command",
    "format_compare_table",
    "format_runtimes_table",
    "runtimes_command",
]


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in body) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in body]
    return "\n".join(lines)


def format_runtimes_table(infos: Sequence[RuntimeInfo]) -> str:
    """ID, TIER, AVAILABLE, VERSION, then the binary path or why the runtime is unavailable."""
    rows = [
        (
            info.id,
            info.tier,
            "yes" if info.available else "no",
            info.version or "-",
            (info.binary or "-") if info.available else (info.reason or "unavailable"),
        )
        for info in infos
    ]
    return _table(("RUNTIME", "TIER", "AVAILABLE", "VERSION", "BINARY / REASON"), rows)


def runtimes_command(*, as_json: bool = False, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """`sandbox runtimes [--json]`: always exit 0 (an unavailable runtime is information, not an error)."""
    infos = list_runtimes(os.environ if env is None else env)
    if as_json:
        text = json.dumps([info.to_dict() for info in infos], indent=2)
    else:
        text = format_runtimes_table(infos)
        for problem in registry.errors:
            text += f"\n\nwarning: {problem}"
    return 0, text


def _num(value: float | None, fmt: str = "{:,}") -> str:
    return "-" if value is None else fmt.format(value)


def format_compare_table(rows: Sequence[CompareRow]) -> str:
    """RUNTIME, OUTCOME, STEPS (turns when the CLI reports them), tokens, cost, wall time, job id."""
    lines = _table(
        ("RUNTIME", "OUTCOME", "STEPS/TURNS", "INPUT TOK", "OUTPUT TOK", "COST USD", "WALL", "JOB"),
        [
            (
                row.runtime,
                row.outcome,
                f"{_num(row.steps, '{}')}/{_num(row.turns, '{}')}",
                _num(row.input_tokens),
                _num(row.output_tokens),
                _num(row.cost_usd, "{:.4f}"),
                f"{row.wall_s:.1f}s",
                row.job_id or "-",
            )
            for row in rows
        ],
    )
    errors = [f"{row.runtime}: {row.error}" for row in rows if row.error]
    return lines + ("\n\n" + "\n".join(errors) if errors else "")


def compare_command(
    options: RunOptions,
    runtime_ids: Sequence[str],
    *,
    parallel: bool = False,
    as_json: bool = False,
    emit: Emit | None = None,
) -> tuple[int, str]:
    """`sandbox compare EXPERT QUERY --runtimes a,b [--parallel] [--json]`.

    Exit code 0 when every runtime completed, 1 otherwise (so CI can gate on "all runtimes pass").
    """
    rows = compare(options, runtime_ids, parallel=parallel, emit=emit)
    code = 0 if rows and all(row.ok for row in rows) else 1
    if as_json:
        return code, json.dumps([row.to_dict() for row in rows], indent=2)
    return code, format_compare_table(rows)
