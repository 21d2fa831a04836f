"""`run_in_docker`: one Expert run in the sandbox, from rendered files to torn-down containers.

The phases, and why they are ordered so:

1. *Inputs* (no Docker yet): the env values the plan names (a missing required one is one error listing all,
   before anything is built), the run resolved once (`sandbox.request.resolve_run`: settings, resume
   checkpoint, job id), the CA bundle.
2. *Sandbox* (`_sandbox.SandboxBuilder`), unless a standby of exactly this sandbox is claimed (`_claim`):
   render with a free internal subnet; skip the build when both content-addressed tags exist, otherwise
   build with progress on stderr; a private 0700 run dir holding the rendered context; compose.yaml
   translated to specs (`_compose`); both networks created in parallel, proxy and Expert containers created
   and attached in parallel, the Expert started first (its start-up is the critical path) and the proxy
   right after. The Expert waits for the proxy's port by itself, so the host never polls a healthcheck.
3. *Stream*: the run, its secrets and the event key go to the Expert's stdin (one JSON line, then EOF);
   its stdout is read line by line and pumped (`_pump.EventPump`: validated, stored in the host job
   store, emitted); the proxy's log becomes `proxyAccess` events and an audit file (`_proxywatch`).
4. *Teardown*, always (`_session.SandboxSession`): containers removed, then networks, then the run dir,
   in parallel where the engine allows. Nothing is left on success, failure, timeout, SIGINT or SIGTERM;
   after SIGKILL the labels let the next run or `sandbox clean` find what is left (`_gc`). Then the
   workspace is scanned and the host's steering files are checked (`sandbox.steering_guard`).

Once the coordinator's terminal event is in (and stored), the container gets `exit_grace_s` to exit and is
then killed: the run is over, and the runtime's own shutdown would only delay the teardown.

Exit codes: the coordinator's terminal event decides (its outcome in `sandbox.events`; 1 without a terminal
event); 130 after SIGINT, 143 after SIGTERM. A signal first asks the Expert to stop (SIGTERM: the runtime
writes its last checkpoint, which is stored, so `--continue` works after Ctrl-C) and kills it after a short
grace; a second signal kills at once (`_stopper`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import IO

from sandbox._errors import DockerError, RunError, SandboxError, UserError
from sandbox._startup import resume_gc
from sandbox._wire import WireReader, new_key
from sandbox.events import (
    DockerContainerStatus,
    EventBase,
    InitializeRuntime,
    InteractiveToolCallResult,
    RunInput,
    RunSetting,
    create_id,
)
from sandbox.jobs import JobStore
from sandbox.options import RunOptions
from sandbox.plan import SandboxPlan
from sandbox.request import RunRequest, WirePayload, build_run_setting, resolve_run
from sandbox.resolve import resolve_sandbox
from sandbox.steering_guard import SteeringGuard, check_records

from ._backend import STDOUT, AttachedStream, ContainerBackend
from ._build import BuildCancelled
from ._claim import claim_standby, key_of, take_over
from ._gc import CleanReport, collect_leftovers
from ._labels import _proc_start, run_labels
from ._lines import LineSplitter
from ._proxylog_feed import ProxyFeed
from ._proxywatch import ProxyWatch
from ._pump import EventPump
from ._quota import QuotaWatcher
from ._sandbox import Cancelled, SandboxBuilder
from ._session import SandboxSession, teardown_line
from ._settings import GC_GRACE_S, DockerSettings, Hidden, expert_user, hidden_paths
from ._signals import SignalGuard
from ._standby import StandbyRecord, spawn_refill
from ._stopper import Stopper
from ._workspace_scan import report_lines, scan_workspace

__all__ = ["expert_command", "run_in_docker"]


def expert_command(provider: str) -> tuple[str, ...]:
    """The Expert container's arguments for a run: a start-up hint only (`sandbox.container_entry`).

    The run itself (`sandbox.request.RunRequest`) goes to stdin with the secrets, so argv, `docker inspect`
    and the container's command line say nothing about it beyond which provider SDK to import early.
    """
    return ("--provider", provider)


class _DockerRun:
    """One run: its inputs, the session holding what it created, and the outcome. The mechanics live in
    the modules it calls; this class only orders them and decides the exit code."""

    def __init__(
        self,
        options: RunOptions,
        plan: SandboxPlan,
        emit: Callable[[EventBase], None],
        backend: ContainerBackend | None,
        settings: DockerSettings,
    ) -> None:
        self.options = options
        self.plan = plan
        # The one resolution `sandbox plan` shows (`sandbox.resolve`): this run's CA bundle and render.
        self.resolved = resolve_sandbox(options.config, plan)
        self._emit = emit
        self.settings = settings
        self.err: IO[str] = settings.stderr or sys.stderr
        self.session = SandboxSession(backend, environ=options.env, name="sandbox-docker")
        self.stopper = Stopper(self.session, grace=settings.stop_grace_s)
        self._lock = threading.Lock()
        self.job_id = ""
        self.run_id = ""  # the host's id until the container's coordinator run id is known
        self.host_run_id = ""
        self.store: JobStore | None = None
        self._request: RunRequest | None = None
        self.proxy_url: str | None = None
        self.wall_clock_s = 0.0
        self.standby: StandbyRecord | None = None
        self.proxy: ProxyWatch | None = None
        self.quota: QuotaWatcher | None = None
        self.scan_since: int | None = None  # the workspace scan after the run looks at what changed since
        self.hidden = Hidden()  # what the Expert must not see (`hidden_paths`), computed once in `_run`
        self.not_scanned: tuple[str, ...] = ()  # fixed once the run dir is known (`_watch_quota`)

    # ------------------------------------------------------------------------------------------ plumbing

    @property
    def request(self) -> RunRequest:
        """The run as resolved once on the host (`sandbox.request`)."""
        assert self._request is not None, "the run is resolved at the start of run()"
        return self._request

    def diag(self, text: str) -> None:
        with self._lock:
            print(text, file=self.err, flush=True)

    def emit(self, event: EventBase) -> None:
        self._emit(event)

    def status(self, service: str, status: str, message: str | None = None) -> None:
        if self.options.verbose:
            self.emit(
                DockerContainerStatus(
                    job_id=self.job_id, run_id=self.run_id, status=status, service=service, message=message
                )
            )

    def check_cancel(self) -> None:
        if self.stopper.cancel.is_set():
            raise Cancelled()

    # ------------------------------------------------------------------------------------------ main

    def run(self) -> int:
        session = self.session
        session.mark("start")
        from sandbox.steering import check_workspace

        check_workspace(self.options.workspace, self.options.env)
        secrets = self.plan.env.values(self.options.env)
        store = JobStore(self.options.jobs_dir)
        self._request = resolve_run(self.options, store)
        self.job_id = self.request.job_id
        self.run_id = self.host_run_id = create_id()
        self.store = store
        self.proxy = ProxyWatch(
            session,
            ProxyFeed(),
            ids=lambda: (self.job_id, self.run_id),
            emit=self.emit,
            status=self.status,
            diag=self.diag,
            verbose=self.options.verbose,
            on_death=self.stopper.kill_expert,  # the only way out is gone: stop now, not into a wall
        )
        session.before_removal(self._drain_proxy)
        session.after_removal(self._stop_quota)
        session.after_removal(self._scan_workspace)  # the Expert's processes are gone: nothing changes now
        session.after_removal(self._close_feed)
        ca = self.resolved.ca_bundle
        uid, gid = expert_user(self.settings, self.options.env, self.options.workspace)

        # Import the SDK and negotiate the API version while this thread renders.
        connecting = session.pool.submit(lambda: session.backend.ping())  # noqa: PLW0108 - in the thread
        guard = SignalGuard(
            self.stopper.on_signal, self.stopper.on_repeat, install=self.settings.install_signal_handlers
        )
        self.stopper.start()
        code = 1
        # The CLI dealt with the records of runs in workspaces related to the working directory before it
        # read a steering file; a workspace elsewhere is checked here, and anything moved means this run's
        # set-up may have come from it.
        moved = check_records(Path.cwd(), os.environ, workspace=self.options.workspace)
        if moved:
            moved.append("sandbox: run again: this run's set-up may have come from them")
            raise UserError("\n".join(moved))
        steering = SteeringGuard.for_run(
            self.options.workspace, self.options.steering, self.options.jobs_dir, os.environ
        )
        steering.begin(self.host_run_id)
        with guard:
            try:
                code = self._run(store, secrets, ca=ca, uid=uid, gid=gid, connecting=connecting)
            except (Cancelled, BuildCancelled):
                code = guard.exit_code or 130
            except SandboxError:
                if guard.exit_code is None:
                    raise
            finally:
                self.teardown()
                if self._settle(steering) and code == 0:
                    code = 1
        self.stopper.close()
        if self.standby is not None and self.settings.refill_standby:
            spawn_refill(self.standby, self.settings.pool(self.options.env))
        return guard.exit_code if guard.exit_code is not None else code

    def _settle(self, steering: SteeringGuard) -> bool:
        """Undo what the run did to the host's steering files (`sandbox.steering`); True when it did any.

        Runs after teardown, so nothing in the sandbox can act again. A run that touched them fails: an Expert
        that rewrites the host's configuration is an incident for whoever runs it, not a detail.
        """
        changes = steering.end()
        for change in changes:
            self.diag(change.describe())
        return bool(changes)

    def _wall_clock(self) -> float:
        """`DockerSettings.wall_clock_s`, else the run's own (`ResolvedSettings.wall_clock_s`)."""
        return self.settings.wall_clock_s or self.request.settings.wall_clock_s

    def _builder(self) -> SandboxBuilder:
        return SandboxBuilder(
            session=self.session,
            options=self.options,
            plan=self.plan,
            resolved=self.resolved,
            settings=self.settings,
            err=self.err,
            emit=self.emit,
            diag=self.diag,
            status=self.status,
            cancelled=self.stopper.cancel.is_set,
            job_id=self.job_id,
            run_id=self.host_run_id,
        )

    def _run(
        self,
        store: JobStore,
        secrets: dict[str, str],
        *,
        ca: bytes | None,
        uid: int,
        gid: int,
        connecting: Future[None],
    ) -> int:
        session, options, proxy = self.session, self.options, self.proxy
        assert proxy is not None
        wall = self._wall_clock()
        started = time.time()
        self.wall_clock_s = wall
        hidden = self.hidden = hidden_paths(options)
        # The per-run key the runtime signs its event lines with (`sandbox._wire`): on stdin only.
        event_key = new_key()

        def payload(deadline: float) -> bytes:
            """The stdin line: the run as resolved, with the container's own deadline, and its secrets."""
            run = self.request.model_copy(update={"deadline": deadline})
            return WirePayload(run=run, env=secrets, event_key=event_key).to_line()

        # The container's own guard fires after the host's (which normally handles it), so it only matters
        # when the host process is gone.
        def deadline() -> float:
            return time.time() + wall + min(30.0, wall)

        gc: Future[CleanReport] | None = None
        if self.settings.collect_garbage:
            gc = session.pool.submit(self._collect_garbage, connecting)

        standby = None
        if self.settings.use_standby:
            key = key_of(options, self.plan, ca=ca, uid=uid, gid=gid, hidden=hidden)
            standby = claim_standby(
                session, key, settings=self.settings, options=options, connecting=connecting, diag=self.diag
            )
        if standby is not None:
            self.standby = standby
            self.scan_since = int(standby.created * 1e9)  # its skills may have started before the claim
            self._watch_quota()
            self.proxy_url = standby.proxy_url
            expert_stream, env_names = take_over(session, standby, payload(deadline()), on_proxy=proxy.watch)
            self.status("expert", "running", f"standby {standby.id}")
        else:
            labels = run_labels(run_id=self.run_id, job_id=self.job_id, deadline=started + wall + GC_GRACE_S)
            builder = self._builder()
            compose = builder.build(labels, uid=uid, gid=gid, hidden=hidden, connecting=connecting)
            self.proxy_url = compose.services["expert"].environment.get("SANDBOX_PROXY_URL")
            expert_spec = replace(compose.services["expert"], command=expert_command(self.plan.provider))
            line = payload(deadline())
            self._watch_quota()
            expert_stream = builder.start(
                compose.services["proxy"], expert_spec, stdin=True, on_proxy=proxy.watch
            )
            expert_stream.send(line)
            expert_stream.close_stdin()
            env_names = list(expert_spec.environment)
        session.mark("started")
        resume_gc()  # the host's start-up (SDK, config, plan, render imports) is over
        self.check_cancel()  # a signal that came while the containers were being created
        session.timer(wall, self.stopper.on_timeout)
        pump = self._pump(expert_stream, store, env_names=[*secrets, *env_names], wire=WireReader(event_key))
        session.mark("output-closed")
        code = self._finish(pump)
        if gc is not None and gc.done() and gc.exception() is None:
            report = gc.result()
            if report.total() and options.verbose:
                self.diag(f"sandbox: removed leftovers of dead runs: {report.total()} object(s)")
        return code

    def _collect_garbage(self, connecting: Future[None]) -> CleanReport:
        connecting.result()
        return collect_leftovers(
            self.session.backend, temp_root=self.settings.temp_root, keep_run=self.run_id
        )

    # ------------------------------------------------------------------------------------------ workspace

    def _watch_quota(self) -> None:
        """Start the total write bound just before the Expert starts (`_quota`).

        First fixes `not_scanned`, the host directories the quota walk and the leftover scan never enter:
        the run's own temp dir and the hidden ones (job store, this tool's cache), which the Expert cannot
        write. The run dir is known by now (built or claimed).
        """
        run_dir = self.session.run_dir
        hidden = self.hidden.host_dirs(self.options.workspace.resolve())
        self.not_scanned = (*([str(run_dir)] if run_dir is not None else []), *hidden)
        self.scan_since = self.scan_since or time.time_ns()
        self.quota = QuotaWatcher(
            self.options.workspace,
            self.plan.limits.workspace_quota_bytes,
            on_exceeded=self.stopper.on_quota,
            since_ns=self.scan_since - 1_000_000_000,
            prune=self.not_scanned,
        )
        self.quota.start()

    def _stop_quota(self) -> None:
        if self.quota is not None:
            self.quota.stop()

    def _scan_workspace(self) -> None:
        """Report (and strip set-id bits from) what the run left in the workspace (`_workspace_scan`)."""
        if self.scan_since is not None and "expert" in self.session.containers:
            report = scan_workspace(self.options.workspace, self.scan_since, prune=list(self.not_scanned))
            for line in report_lines(report):
                self.diag(line)
        self.session.mark("scanned")

    def _drain_proxy(self) -> None:
        if self.proxy is not None:
            self.proxy.drain()
        self.session.mark("proxy-drained")

    def _close_feed(self) -> None:
        if self.proxy is not None:
            self.proxy.feed.close((self.store, self.job_id, self.run_id) if self.store is not None else None)

    # ------------------------------------------------------------------------------------------ stream

    def _run_setting(
        self,
        run_id: str,
        expert_key: str,
        text: str | None,
        *,
        env_names: list[str],
        checkpoint_answer: InteractiveToolCallResult | None,
    ) -> RunSetting:
        """What the container's run `run_id` was started with: the request it was sent, so nothing here
        is resolved again (`sandbox.request.build_run_setting`, the runtime's own builder)."""
        return build_run_setting(
            self.request,
            self.options.config,
            run_id=run_id,
            expert_key=expert_key,
            run_input=RunInput(
                text=text if checkpoint_answer is None else None,
                interactive_tool_call_result=checkpoint_answer,
            ),
            env=dict.fromkeys(env_names, ""),
            experts=self.plan.experts,
            proxy_url=self.proxy_url,
        )

    def _pump(
        self, stream: AttachedStream, store: JobStore, env_names: list[str], wire: WireReader | None = None
    ) -> EventPump:
        session = self.session
        answer: InteractiveToolCallResult | None = None

        def setting(
            run_id: str, expert_key: str, text: str | None, init: InitializeRuntime | None
        ) -> RunSetting:
            nonlocal answer
            if init is not None and init.interactive_tool_call is not None:
                answer = self._answer(init)
            return self._run_setting(
                run_id,
                expert_key,
                text,
                env_names=env_names,
                checkpoint_answer=answer if init else None,
            )

        def on_run_id(run_id: str) -> None:
            self.run_id = run_id
            if self.proxy is not None:
                self.proxy.feed.set_run(store, self.job_id, run_id)

        def on_terminal(event: EventBase) -> None:
            session.mark("terminal-event")
            # The run is over; a skill that will not exit must not keep the user waiting.
            session.timer(self.settings.exit_grace_s, self.stopper.kill_expert)

        pump = EventPump(
            job_id=self.job_id,
            expert_key=self.options.expert_key,
            emit=self.emit,
            store=store,
            diag=self.diag,
            verbose=self.options.verbose,
            run_setting=setting,
            on_run_id=on_run_id,
            on_terminal=on_terminal,
            on_first=lambda: session.mark("first-event"),
            wire=wire,
        )
        splitters = {1: LineSplitter(), 2: LineSplitter()}
        try:
            for stream_id, chunk in stream.frames():
                handler = pump.stdout_line if stream_id == STDOUT else pump.stderr_line
                for line in splitters.get(stream_id, splitters[2]).feed(chunk):
                    handler(line)
        except DockerError as exc:
            if not self.stopper.cancel.is_set():
                self.diag(f"sandbox: lost the Expert's output stream: {exc}")
        for stream_id, splitter in splitters.items():
            for line in splitter.flush():
                (pump.stdout_line if stream_id == STDOUT else pump.stderr_line)(line)
        return pump

    def _answer(self, init: InitializeRuntime) -> InteractiveToolCallResult | None:
        """The `-i` answer the container's runtime reports, with the skill named by the resumed checkpoint."""
        ref = init.interactive_tool_call
        if ref is None:
            return None
        skill = ""
        checkpoint = self.request.checkpoint
        for call in (checkpoint.pending_tool_calls or []) if checkpoint else []:
            if call.id == ref.tool_call_id:
                skill = call.skill_name
        return InteractiveToolCallResult(
            tool_call_id=ref.tool_call_id, tool_name=ref.tool_name, skill_name=skill, text=ref.text
        )

    # ------------------------------------------------------------------------------------------ outcome

    def _finish(self, pump: EventPump) -> int:
        session, stopper = self.session, self.stopper
        cid = session.containers["expert"]
        code = pump.exit_code()
        if code is not None and not pump.store_errors and not stopper.stopped:
            # The terminal event decides the outcome. The engine's own handling of the container's exit
            # (releasing its network endpoint and mounts, ~0.1 s) then overlaps the proxy drain instead of
            # preceding it; the container's removal waits for it (`SandboxSession.wait_before_removing`).
            session.wait_before_removing("expert", session.pool.submit(self._wait_expert, cid))
            return code
        exit_code = self._wait_expert(cid)
        if stopper.cancel.is_set():
            return 130  # run() replaces it with the signal's code
        if stopper.quota_hit.is_set() and self.quota is not None:
            self.diag(self.quota.message())
            return 1
        if stopper.timed_out.is_set():
            self.diag(
                f"sandbox: the run exceeded its wall-clock guard of {self.wall_clock_s:.0f} s and was stopped"
            )
            return 1
        code = pump.exit_code()
        if code is None:
            self._explain_no_terminal(pump, exit_code)
            return 1
        if pump.store_errors:
            self.diag(
                "sandbox: the run finished but its job files could not all be written; "
                "--continue may not find it"
            )
            return 1
        return code

    def _wait_expert(self, cid: str) -> int | None:
        exit_code: int | None = None
        with contextlib.suppress(DockerError):
            exit_code = self.session.backend.wait_container(cid, timeout=30)
        self.status("expert", "stopped", f"exit code {exit_code}")
        return exit_code

    def _explain_no_terminal(self, pump: EventPump, exit_code: int | None) -> None:
        """Say why a run ended without a terminal event; a proxy that never came up is a RunError."""
        proxy, backend, containers = self.proxy, self.session.backend, self.session.containers
        assert proxy is not None
        if proxy.died and not proxy.ready.is_set():
            code = None
            with contextlib.suppress(DockerError):
                state = backend.container_state(containers["proxy"])
                code = state.exit_code if state else None
            tail = "\n".join(f"  {line}" for line in list(proxy.tail)[-12:])
            raise RunError(f"the proxy failed to start (exit code {code}); its last lines:\n{tail}")
        lines = [f"sandbox: the Expert's container exited (code {exit_code}) without a terminal event"]
        state = None
        with contextlib.suppress(DockerError):
            state = backend.container_state(containers["expert"])
        if state is not None and state.oom_killed:
            lines.append(f"  it ran out of memory (limit {self.plan.limits.memory}; raise it with --memory)")
        if proxy.died:
            lines.append("  the proxy exited during the run; its last lines:")
            lines += [f"    {line}" for line in list(proxy.tail)[-10:]]
        if pump.tail:
            lines.append("  last output lines:")
            lines += [f"    {line}" for line in list(pump.tail)[-15:]]
        self.diag("\n".join(lines))

    # ------------------------------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        """Remove everything this run created (`SandboxSession.teardown`); what fails is reported."""
        line = teardown_line(self.session.teardown())
        if self.options.env.get("SANDBOX_DEBUG_TIMINGS"):
            self.diag(f"sandbox: timings (s since start): {_timings(self.session.marks)}")
        if line is not None:
            self.diag(line)


def _timings(marks: dict[str, float]) -> str:
    start = marks.get("start", 0.0)
    ordered = sorted(marks.items(), key=lambda kv: kv[1])
    parts = " ".join(f"{k}={v - start:.3f}" for k, v in ordered)
    age = _process_age(start)
    return parts + (f" (process started {age:.3f} s before start)" if age is not None else "")


def _process_age(at: float) -> float | None:
    """How long this process had been running at perf_counter() `at` (Linux; 10 ms resolution)."""
    start = _proc_start(os.getpid())
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if start is None or not start.isdigit():
        return None
    return uptime - int(start) / os.sysconf("SC_CLK_TCK") - (time.perf_counter() - at)


def run_in_docker(
    options: RunOptions,
    plan: SandboxPlan,
    emit: Callable[[EventBase], None],
    *,
    backend: ContainerBackend | None = None,
    settings: DockerSettings | None = None,
) -> int:
    """Run `options.expert_key` in the sandbox `plan` describes; events go to `emit`; returns the exit code.

    Raises `UserError` for bad input (missing env values, no checkpoint to continue) before anything is
    built, and `DockerError`/`BuildError`/`RunError` when the sandbox cannot be built or started (after
    tearing down what was created). See the module docstring for the phases.
    """
    return _DockerRun(options, plan, emit, backend, settings or DockerSettings()).run()
