"""`warm_pool` and `stop_pool`: keep N standby sandboxes of one plan ready, or remove them (`sandbox warm`).

See `_standby` for what a standby is and why it is as safe as a fresh sandbox. `create_standby` makes one
with the same builder a run uses (`_sandbox.SandboxBuilder`), so it is the sandbox that run would have
built; the rest only counts: it tops a key's pool up to `count` under the key's fill lock (so two refills
never race to overshoot), and removes a key's standbys on request.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sandbox._errors import DockerError, RunError
from sandbox.events import create_id
from sandbox.options import RunOptions
from sandbox.plan import SandboxPlan
from sandbox.resolve import resolve_sandbox

from ._backend import AttachedStream, ContainerBackend
from ._claim import key_of
from ._lines import LineSplitter
from ._sandbox import SandboxBuilder
from ._session import SandboxSession, teardown_line
from ._settings import GC_GRACE_S, DockerSettings, expert_user, hidden_paths
from ._standby import StandbyPool, StandbyRecord, is_ready_line, remove_standby, standby_labels

__all__ = ["WarmReport", "create_standby", "plan_key", "stop_pool", "warm_pool"]

_STANDBY_READY_S = 120.0  # how long `sandbox warm` waits for a standby's runtime to say it is ready


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
    uid, gid = expert_user(settings, options.env, options.workspace)
    ca = resolve_sandbox(options.config, plan).ca_bundle
    return key_of(options, plan, ca=ca, uid=uid, gid=gid, hidden=hidden_paths(options))


def create_standby(
    options: RunOptions,
    plan: SandboxPlan,
    *,
    ttl: float,
    refill: Sequence[str],
    refill_cwd: str,
    backend: ContainerBackend | None = None,
    settings: DockerSettings | None = None,
) -> StandbyRecord:
    """Create one standby sandbox for this plan and return its record (the caller publishes it).

    Everything a run would create, with the Expert's runtime started in standby mode: imports done, proxy
    reached, waiting on stdin. Returns once it says it is ready; on an error, removes what it made.
    """
    from sandbox.steering import check_workspace

    settings = settings or DockerSettings()
    err = settings.stderr or sys.stderr
    session = SandboxSession(backend, environ=options.env, name="sandbox-warm")
    check_workspace(options.workspace, options.env)
    uid, gid = expert_user(settings, options.env, options.workspace)
    resolved = resolve_sandbox(options.config, plan)
    hidden = hidden_paths(options)
    key = key_of(options, plan, ca=resolved.ca_bundle, uid=uid, gid=gid, hidden=hidden)
    run_id = create_id()
    created = time.time()
    expires = created + ttl
    labels = standby_labels(run_id=run_id, key=key, deadline=expires + GC_GRACE_S)
    builder = SandboxBuilder(
        session=session,
        options=options,
        plan=plan,
        resolved=resolved,
        settings=settings,
        err=err,
        emit=lambda _event: None,
        diag=lambda text: print(text, file=err, flush=True),
        status=lambda _service, _status, _message: None,
        cancelled=lambda: False,
        job_id="standby",
        run_id=run_id,
    )
    connecting = session.pool.submit(lambda: session.backend.ping())  # noqa: PLW0108 - in the thread
    try:
        compose = builder.build(labels, uid=uid, gid=gid, hidden=hidden, connecting=connecting)
        spec = compose.services["expert"]
        expert_spec = replace(
            spec,
            stdin_once=False,
            command=("--standby", "--idle", str(int(ttl)), "--provider", plan.provider),
        )
        stream = builder.start(compose.services["proxy"], expert_spec, stdin=False, on_proxy=None)
        _wait_ready(session, stream)
        assert session.run_dir is not None
        record = StandbyRecord(
            id=run_id,
            key=key,
            expert=options.expert_key,
            containers=dict(session.containers),
            networks=dict(session.networks),
            run_dir=str(session.run_dir),
            proxy_url=spec.environment.get("SANDBOX_PROXY_URL"),
            env_names=tuple(spec.environment),
            created=created,
            expires=expires,
            refill=tuple(refill),
            refill_cwd=refill_cwd,
        )
    except BaseException:
        line = teardown_line(session.teardown())
        if line is not None:
            print(line, file=err, flush=True)
        raise
    session.detach()  # the standby outlives this process: its objects stay, the stream and pool go
    return record


def _wait_ready(session: SandboxSession, stream: AttachedStream) -> None:
    """Wait for the standby runtime's ready line; its last words in the error when it never comes."""
    tail: deque[str] = deque(maxlen=20)
    splitter = LineSplitter()
    timer = session.timer(_STANDBY_READY_S, stream.close)
    for _, chunk in stream.frames():
        for line in splitter.feed(chunk):
            if is_ready_line(line):
                timer.cancel()
                return
            tail.append(line)
    lines = "\n".join(f"  {line}" for line in tail) or "  (no output)"
    raise RunError(f"the standby sandbox did not become ready; the Expert container's last lines:\n{lines}")


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
    pool = settings.pool(options.env)
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
            record = create_standby(
                options,
                plan,
                ttl=ttl,
                refill=refill,
                refill_cwd=os.getcwd(),
                backend=backend,
                settings=settings,
            )
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
