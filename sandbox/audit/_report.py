"""The audit report for people (a rich table on stdout) and for programs (`--json`).

Stdout carries the report (it is the command's data); progress went to stderr while the audit ran. The
table has one row per probe: probe, expected, observed, control, verdict; failed and unproven rows are
listed again at the end with what to do.
"""

from __future__ import annotations

import json
from typing import IO

from ._catalog import Outcome
from ._run import AuditReport

__all__ = ["print_json", "print_table"]

_STYLE = {"pass": "green", "fail": "bold red", "unproven": "yellow"}


def print_json(report: AuditReport, out: IO[str]) -> None:
    out.write(json.dumps(report.to_json(), indent=2) + "\n")


def print_table(report: AuditReport, out: IO[str], *, width: int | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    # A terminal gets its own width; a file or pipe (CI logs) a wide fixed one, so rows do not wrap.
    tty = hasattr(out, "isatty") and out.isatty()
    console = Console(file=out, width=width or (None if tty else 200), soft_wrap=False)
    table = Table(title=f"sandbox audit: {report.expert}", show_lines=False, expand=True)
    table.add_column("probe", no_wrap=True)
    table.add_column("expected", ratio=3)
    table.add_column("observed", ratio=4)
    table.add_column("control", ratio=3)
    table.add_column("verdict", no_wrap=True)
    group = None
    for o in report.outcomes:
        if o.group != group and group is not None:
            table.add_section()
        group = o.group
        table.add_row(
            o.id, o.expected, o.observed, o.control_observed, f"[{_STYLE[o.verdict]}]{o.verdict}[/]"
        )
    console.print(table)
    counts = report.counts()
    sandbox = report.sandbox
    console.print(
        f"images: {sandbox.get('expertImage')}, {sandbox.get('proxyImage')}; user "
        f"{sandbox.get('user')}; {report.seconds:.1f}s"
    )
    bad: list[Outcome] = [o for o in report.outcomes if o.verdict != "pass"]
    for o in bad:
        why = (
            "the sandbox did not hold"
            if o.verdict == "fail"
            else "the control failed, so the result proves nothing"
        )
        console.print(
            f"[{_STYLE[o.verdict]}]{o.verdict}[/] {o.id}: {why}: {o.observed} (control: {o.control_observed})"
        )
    summary = f"{counts['pass']} passed, {counts['fail']} failed, {counts['unproven']} unproven"
    console.print(f"[{'green' if report.ok else 'bold red'}]{summary}[/]")
