"""`warm_pool` and `stop_pool`: keep N standby sandboxes of one plan ready, or remove them (`sandbox warm`).

See `_standby` for what a standby is and why it is as safe as a fresh sandbox. This module only counts:
it tops a key's pool up to `count` under the key's fill lock (so two refills never race to overshoot), and
removes a key's standbys on request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sandbox._errors import DockerError
from sandbox.options import RunOptions
from sandbox.plan import SandboxPlan
from sandbox.resolve import resolve_sandbox

from ._backend import ContainerBackend
from ._run import DockerSettings, _DockerRun, _hidden_paths, _user
from ._standby import StandbyPool, StandbyRecord, remove_standby, standby_key

__all__ = ["WarmReport", "plan_key", "stop_pool", "warm_pool"]


@dataclass
class WarmReport:
    """What a `warm_pool` call found and did."""

    key: str
    ready: list[StandbyRecord] = field(default_factory=list)  # live standbys of the key, after the call
    created: list[str] = field(default_factory=list)  # ids made by this call
    removed: list[str] = field(default_factory=list)  # ids of expired standbys removed on the way
    busy: bool = False  # another process held the key's fill lock; nothing was created


def plan_key(options: RunOptions, plan: SandboxPlan, settings: DockerSettings) -> str:
    """The standby key a run with these options would look for (its CA bundle read as the run reads it)."""
    uid, gid = _user(settings, options.env, options.workspace)
    ca = resolve_sandbox(options.config, plan).ca_bundle
    return standby_key(
        plan=plan,
        config=options.config,
        workspace=options.workspace,
        uid=uid,
        gid=gid,
        hidden=_hidden_paths(options).key(),
        ca=ca,
    )


def warm_pool(
    options: RunOptions,
    plan: SandboxPlan,
    *,
    count: int,
    ttl: float,
    refill: Sequence[str],
    backend: ContainerBackend | None = None,
    settings: DockerSettings | None = None,
) -> WarmReport:
    """Make standbys until `count` live ones of this plan exist (expired ones are removed first)."""
    settings = replace(settings or DockerSettings(), install_signal_handlers=False, collect_garbage=False)
    if backend is None:
        from ._sdk import DockerBackend

        backend = DockerBackend(environ=options.env)
    pool = settings.standby_pool or StandbyPool.default(options.env)
    report = WarmReport(key=plan_key(options, plan, settings))
    with pool.filling(report.key) as mine:
        pool.refill_began(report.key)  # a refill a run announced: from here the fill lock speaks for it
        if not mine:
            report.busy = True
            report.ready = pool.records(report.key)
            return report
        live, expired = _split(pool, report.key)
        for record in expired:
            if pool.take(record):
                remove_standby(backend, record)
                report.removed.append(record.id)
        for _ in range(max(0, count - len(live))):
            run = _DockerRun(options, plan, lambda _event: None, backend, settings)
            record = run.make_standby(ttl=ttl, refill=refill, refill_cwd=os.getcwd())
            pool.add(record)
            report.created.append(record.id)
        report.ready = pool.records(report.key)
    return report


def _split(pool: StandbyPool, key: str) -> tuple[list[StandbyRecord], list[StandbyRecord]]:
    now = time.time()
    records = pool.records(key)
    return [r for r in records if r.live(now)], [r for r in records if not r.live(now)]


def stop_pool(pool: StandbyPool, backend: ContainerBackend, key: str | None = None) -> list[str]:
    """Remove the standbys of `key` (every key's when None); their ids. Problems raise DockerError.

    Each key's fill lock is taken first (waiting), so a standby a refill is still making is removed too
    instead of appearing right after; before that, a refill a run has just started, which has not taken the
    lock yet, is waited for.
    """
    removed, problems = [], []
    for each in [key] if key else pool.keys():
        pool.wait_for_refills(each)
        with pool.filling(each, wait=True):
            for record in pool.records(each):
                if pool.take(record):
                    problems += remove_standby(backend, record)
                    removed.append(record.id)
    if problems:
        raise DockerError("could not remove: " + "; ".join(problems), hint="run `sandbox clean --all`")
    return removed
