"""`sandbox audit`: prove an Expert's sandbox holds, on this machine, from inside the sandbox itself.

Public surface (lazy, so that the in-container probe program `python -m sandbox.audit._probes` imports
nothing but the standard library)::

    run_audit(plan, config, env, *, backend=None, settings=None) -> AuditReport
    AuditSettings, AuditReport, Outcome
    print_table(report, out), print_json(report, out)
    build_catalog(site), judge_all(catalog, evidence)      # the probes as data (tests, docs)

Module map: `_probes` (in-container probe program, stdlib only), `_upstream` (the audit's own upstream,
stdlib only), `_catalog` (the catalogue, assembled in report order from one `_catalog_<threat>` module per
threat: egress, network, filesystem, steering, secrets, peers, privilege, workspace, resources), on
`_catalog_model` (site, evidence, probe, outcome, the verdict rule) and `_catalog_judges` (the repeated
refusal/control shapes), `_policy` (what the audit adds to the policy, and the proof that it adds nothing
else), `_images` (the trusted helper image), `_host` (host-side facts), `_run` (orchestration on the
executor's `ContainerBackend`), `_report` (table and JSON), `_layout` (the user's real workspace layout,
replicated for the steering probes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._catalog import AuditProbe, Evidence, Outcome, Site, build_catalog, judge_all
    from ._layout import UserLayout
    from ._report import print_json, print_table
    from ._run import AuditReport, AuditSettings, run_audit

__all__ = [
    "AuditProbe",
    "AuditReport",
    "AuditSettings",
    "Evidence",
    "Outcome",
    "Site",
    "UserLayout",
    "build_catalog",
    "judge_all",
    "print_json",
    "print_table",
    "run_audit",
]

_WHERE = {
    "AuditProbe": "_catalog",
    "Evidence": "_catalog",
    "Outcome": "_catalog",
    "Site": "_catalog",
    "build_catalog": "_catalog",
    "judge_all": "_catalog",
    "print_json": "_report",
    "print_table": "_report",
    "UserLayout": "_layout",
    "AuditReport": "_run",
    "AuditSettings": "_run",
    "run_audit": "_run",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox.audit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"sandbox.audit.{module}"), name)
