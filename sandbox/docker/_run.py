"""`run_in_docker`: one Expert run in the sandbox, from rendered files to torn-down containers.

The phases, and why they are ordered so:

1. *Inputs* (no Docker yet): the env values the plan names (a missing required one is one error listing all,
   before anything is built), the checkpoint to resume from the host's job store, the CA bundle.
2. *Images*: render with a free internal subnet, skip the build when both content-addressed tags exist,
   otherwise build with progress on stderr (and `dockerBuildProgress` events with `--verbose`).
3. *Sandbox*: a private 0700 temp dir holding the rendered context, then compose.yaml translated to specs
   (`_compose`): both networks created in parallel, proxy and Expert containers created and attached in
   parallel, the Expert started first (its start-up is the critical path) and the proxy right after. The
   Expert waits for the proxy's port by itself, so the host never polls a healthcheck.
4. *Stream*: the secrets and the checkpoint go to the Expert's stdin (one JSON line, then EOF); its stdout
   is read line by line and pumped (`_pump.EventPump`: validated, stored in the host job store, emitted);
   the proxy's log becomes `proxyAccess` events and an audit file next to the run's events.
5. *Teardown*, always: containers killed and removed, then networks, then the temp dir, in parallel where
   the engine allows. Nothing is left on success, failure, timeout, SIGINT or SIGTERM; after SIGKILL the
   labels let the next run or `sandbox clean` find what is left (`_gc`).

Once the coordinator's terminal event is in (and stored), the container gets `exit_grace_s` to exit and is
then killed: the run is over, and the runtime's own shutdown would only delay the teardown.

Exit codes: the coordinator's terminal event decides (0 for `completeRun` and stops awaiting input, 1 for
`stopRunByError`/`stopRunByExceededMaxSteps`, 1 without a terminal event); 130 after SIGINT, 143 after
SIGTERM. A signal first asks the Expert to stop (SIGTERM: the runtime writes its last checkpoint, which is
stored, so `--continue` works after Ctrl-C) and kills it after a short grace; a second signal kills at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from sandbox._errors import DockerError, RunError, SandboxError, UserError
from sandbox._startup import resume_gc
from sandbox._wire import WireReader, new_key
from sandbox.events import (
    Checkpoint,
    DockerBuildProgress,
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
from sandbox.render import RenderedContext, RunSite
from sandbox.request import RunRequest, WirePayload, build_run_setting, resolve_run
from sandbox.resolve import read_ca_bundle, resolve_sandbox
from sandbox.steering_guard import SteeringGuard, check_records

from ._backend import (
    STDOUT,
    AttachedStream,
    ContainerBackend,
    ContainerSpec,
    NetworkExists,
    NetworkSpec,
    SubnetTaken,
)
from ._build import BuildCancelled, ImageSet, SkillsCache, ensure_images, format_skills
from ._compose import ComposeProject, load_compose
from ._gc import collect_leftovers, make_run_dir
from ._labels import JOB_LABEL, ROLE_LABEL, RUN_LABEL, TOOL_LABEL, TOOL_NAME, _proc_start, run_labels
from ._lines import LineSplitter
from ._progress import BuildReporter, ConsoleBuildReporter, EventBuildReporter, TeeReporter
from ._proxylog_feed import ProxyFeed
from ._pump import EventPump
from ._quota import QuotaWatcher
from ._signals import SignalGuard
from ._standby import (
    StandbyPool,
    StandbyRecord,
    is_ready_line,
    remove_standby,
    spawn_refill,
    standby_key,
    standby_labels,
)
from ._subnet import pick_subnet
from ._user import resolve_user
from ._workspace_mount import nosuid_workspace, release_mounts
from ._workspace_scan import report_lines, scan_workspace

__all__ = ["DockerSettings", "Hidden", "expert_command", "read_ca_bundle", "run_in_docker", "secret_values"]

_SUBNET_ATTEMPTS = 6
_GC_GRACE_S = 600  # how long after its wall-clock guard a dead run's objects are certainly garbage
_STANDBY_READY_S = 120.0  # how long `sandbox warm` waits for a standby's runtime to say it is ready


@dataclass(frozen=True)
class DockerSettings:
    """Executor knobs that are not Perstack options (tests and embedders set them; the CLI uses defaults).

    **Parameters:**

    * `uid`/`gid`: who the Expert runs as (default: the invoking user, `SANDBOX_USER=uid:gid` in the env map;
      as root: the workspace's owner, or root only with SANDBOX_USER in the process environment, `_user`).
    * `wall_clock_s`: overall guard for the container (default `timeout x maxSteps`, as the reference).
    * `stop_grace_s`: after SIGINT/SIGTERM/timeout, how long the Expert may take to write its last
      checkpoint before it is killed.
    * `exit_grace_s`: after the coordinator's terminal event, how long the container may take to exit before
      it is killed. The run is over and recorded by then; only the runtime's own shutdown (closing skill
      processes) is cut short, and the container is about to be removed anyway.
    * `install_signal_handlers`: False when not called from the main thread's CLI.
    * `temp_root`: where per-run temp dirs go (default: the system temp dir).
    * `skills_cache`: the host cache of skill versions (default under XDG_CACHE_HOME).
    * `collect_garbage`: reap dead runs' leftovers at start (in the background).
    * `stderr`: where human diagnostics go; `progress`: show build progress there.
    * `use_standby`: claim a matching standby sandbox made by `sandbox warm` (`_standby`) instead of creating
      the sandbox, when one exists; `standby_pool`: where their records are (default: the user's cache
      dir); `refill_standby`: after using one, start `sandbox warm` again in the background (as the
      standby's record says) so the pool stays full.
    * `nosuid_workspace`: when this process may mount (root), bind the workspace through a nosuid,nodev
      mount in the run dir (`_workspace_mount`); tests with a fake engine turn it off.
    """

    uid: int | None = None
    gid: int | None = None
    wall_clock_s: float | None = None
    stop_grace_s: float = 3.0
    exit_grace_s: float = 0.1
    install_signal_handlers: bool = True
    temp_root: Path | None = None
    skills_cache: SkillsCache | None = None
    collect_garbage: bool = True
    stderr: IO[str] | None = None
    progress: bool = True
    use_standby: bool = True
    standby_pool: StandbyPool | None = None
    refill_standby: bool = True
    nosuid_workspace: bool = True


class _Cancelled(Exception):  # noqa: N818 - control flow: a signal arrived between phases
    pass


def _user(settings: DockerSettings, env: Mapping[str, str], workspace: Path | None = None) -> tuple[int, int]:
    """Who the Expert runs as; never root unless root asked for it (`_user.resolve_user`)."""
    choice = resolve_user(settings.uid, settings.gid, env, workspace or Path.cwd())
    return choice.uid, choice.gid


def secret_values(plan: SandboxPlan, env: Mapping[str, str]) -> dict[str, str]:
    """The values of exactly the plan's variables (`EnvPlan.values`, the one missing-env check)."""
    return plan.env.values(env)


def expert_command(provider: str) -> tuple[str, ...]:
    """The Expert container's arguments for a run: a start-up hint only (`sandbox.container_entry`).

    The run itself (`sandbox.request.RunRequest`) goes to stdin with the secrets, so argv, `docker inspect`
    and the container's command line say nothing about it beyond which provider SDK to import early.
    """
    return ("--provider", provider)


@dataclass
class _Proxy:
    """What the host knows about the proxy while the Expert runs."""

    ready: threading.Event = field(default_factory=threading.Event)
    exited: threading.Event = field(default_factory=threading.Event)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=30))
    last_line: float = 0.0


class _DockerRun:
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
        self._emit_raw = emit
        self._backend = backend
        self.settings = settings
        self.err: IO[str] = settings.stderr or sys.stderr
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-docker")
        self.cancel = threading.Event()
        self.timed_out = threading.Event()
        self.finishing = threading.Event()
        self.containers: dict[str, str] = {}
        self.networks: list[str] = []
        self.network_names: dict[str, str] = {}
        self.specs: dict[str, ContainerSpec] = {}
        self.streams: list[AttachedStream] = []
        self.run_dir: Path | None = None
        self.proxy = _Proxy()
        self.proxy_died = False
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self.job_id = ""
        self.run_id = ""  # the host's id until the container's coordinator run id is known
        self.host_run_id = ""
        self.feed: ProxyFeed | None = None
        self.store: JobStore | None = None
        self.checkpoint: Checkpoint | None = None
        self._request: RunRequest | None = None  # resolved by `run`; a standby has none
        self.proxy_url: str | None = None
        self.wall_clock_s = 0.0
        self.marks: dict[str, float] = {}
        self.standby: StandbyRecord | None = None
        self._background: list[Future[Any]] = []  # removals of unusable standbys; teardown waits for them
        self._expert_exit: Future[int | None] | None = None  # the engine's exit handling, see _finish
        self._requests: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.quota: QuotaWatcher | None = None
        self.quota_hit = threading.Event()
        self.scan_since: int | None = None  # the workspace scan after the run looks at what changed since

    # ------------------------------------------------------------------------------------------ plumbing

    @property
    def request(self) -> RunRequest:
        """The run as resolved once on the host (`sandbox.request`); only `run` has one."""
        assert self._request is not None, "the run is resolved at the start of run()"
        return self._request

    @property
    def backend(self) -> ContainerBackend:
        if self._backend is None:
            from ._sdk import DockerBackend

            self._backend = DockerBackend(environ=self.options.env)
        return self._backend

    def diag(self, text: str) -> None:
        with self._lock:
            print(text, file=self.err, flush=True)

    def emit(self, event: EventBase) -> None:
        self._emit_raw(event)

    def status(self, service: str, status: str, message: str | None = None) -> None:
        if self.options.verbose:
            self.emit(
                DockerContainerStatus(
                    job_id=self.job_id, run_id=self.run_id, status=status, service=service, message=message
                )
            )

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _timer(self, seconds: float, action: Callable[[], None]) -> threading.Timer:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        timer.start()
        self._timers.append(timer)
        return timer

    # ------------------------------------------------------------------------------------------ stopping

    def stop_expert(self, grace: float) -> None:
        """Ask the Expert to stop (SIGTERM: it writes its last checkpoint), kill it after `grace`."""
        cid = self.containers.get("expert")
        if cid is not None:
            with contextlib.suppress(DockerError):
                self.backend.kill_container(cid, "SIGTERM")
        self._timer(grace, self.kill_expert)

    def kill_expert(self) -> None:
        cid = self.containers.get("expert")
        if cid is not None:
            with contextlib.suppress(DockerError):
                self.backend.kill_container(cid, "SIGKILL")

    # Signal handlers run on the main thread between two bytecodes, possibly while it holds a lock (the
    # thread pool's, the HTTP pool's). So they only put a request on a SimpleQueue, whose `put` is
    # documented reentrant and safe in signal handlers; the stopper thread does the work.

    def on_signal(self, signum: int) -> None:
        self._requests.put("signal")

    def on_repeat(self, signum: int) -> None:
        self._requests.put("kill")

    def on_timeout(self) -> None:
        self._requests.put("timeout")

    def _stopper(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            if request == "signal":
                self.cancel.set()  # first, so the main thread sees it once it registers containers
                self.stop_expert(self.settings.stop_grace_s)
            elif request == "timeout":
                self.timed_out.set()
                self.stop_expert(self.settings.stop_grace_s)
            elif request == "quota":
                self.quota_hit.set()  # the disk is filling: no grace
                self.kill_expert()
            else:
                self.kill_expert()

    # ------------------------------------------------------------------------------------------ main

    def mark(self, name: str) -> None:
        """Record a phase boundary (`SANDBOX_DEBUG_TIMINGS=1` prints them to stderr at the end)."""
        self.marks.setdefault(name, time.perf_counter())

    def run(self) -> int:
        self.mark("start")
        from sandbox.steering import check_workspace

        check_workspace(self.options.workspace, self.options.env)
        secrets = secret_values(self.plan, self.options.env)
        store = JobStore(self.options.jobs_dir)
        request = resolve_run(self.options, store)
        self._request, self.job_id, self.checkpoint = request, request.job_id, request.checkpoint
        self.run_id = self.host_run_id = create_id()
        self.store = store
        self.feed = ProxyFeed()
        ca = self.resolved.ca_bundle
        uid, gid = _user(self.settings, self.options.env, self.options.workspace)

        # Import the SDK and negotiate the API version while this thread renders.
        connecting = self.pool.submit(lambda: self.backend.ping())  # noqa: PLW0108 - resolve it in the thread
        guard = SignalGuard(self.on_signal, self.on_repeat, install=self.settings.install_signal_handlers)
        stopper = threading.Thread(target=self._stopper, name="sandbox-stopper", daemon=True)
        stopper.start()
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
            except (_Cancelled, BuildCancelled):
                code = guard.exit_code or 130
            except SandboxError:
                if guard.exit_code is None:
                    raise
            finally:
                self.teardown()
                if self._settle(steering) and code == 0:
                    code = 1
        self._requests.put(None)
        stopper.join(timeout=5)
        if self.standby is not None and self.settings.refill_standby:
            spawn_refill(self.standby, self.settings.standby_pool or StandbyPool.default(self.options.env))
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

    def _build_sandbox(
        self, labels: Mapping[str, str], *, uid: int, gid: int, hidden: Hidden, connecting: Future[None]
    ) -> ComposeProject:
        """Render, make sure the images exist, write the run dir, create the networks: the sandbox minus
        its containers (shared by a run and `sandbox warm`). Rendered from the run's resolution, so the
        images are the ones `sandbox plan` names."""
        self.run_dir = make_run_dir(self.settings.temp_root, self.run_id, labels)
        project = f"sandbox-{self.run_id}"
        workspace = self._workspace_source(uid)

        def render(subnet: str) -> RenderedContext:
            site = RunSite(
                project=project,
                workspace=workspace,
                uid=uid,
                gid=gid,
                internal_subnet=subnet,
                labels=labels,
                hidden=hidden.dirs,
                masked=hidden.files,
            )
            return self.resolved.render(site)

        # A random /24 is almost never taken; if it is, creating the network says so and we pick again with
        # the engine's list in hand. Rendering meanwhile overlaps the SDK import and the first request.
        subnet = pick_subnet([])
        ctx = render(subnet)
        connecting.result()
        backend = self.backend
        self.mark("rendered")
        self._images(ctx)
        self.mark("images")
        self.check_cancel()
        compose = self._write(ctx)

        for attempt in range(_SUBNET_ATTEMPTS):
            try:
                self._networks(compose)
                self.mark("networks")
                break
            except DockerError as exc:
                if not isinstance(exc, SubnetTaken) or attempt == _SUBNET_ATTEMPTS - 1:
                    raise
                self._remove_networks()
                subnet = pick_subnet([*backend.used_subnets(), subnet])
                ctx = render(subnet)
                compose = self._write(ctx)
        self.check_cancel()
        return compose

    def _workspace_source(self, uid: int) -> Path:
        """What compose binds at /workspace: a nosuid,nodev mount of the workspace when this process may
        make one (`_workspace_mount`), else the workspace itself."""
        assert self.run_dir is not None
        workspace = self.options.workspace
        if not self.settings.nosuid_workspace:
            return workspace
        try:
            mounted = nosuid_workspace(workspace.resolve(), self.run_dir)
        except OSError as exc:
            raise RunError(f"could not mount the workspace nosuid,nodev for the sandbox: {exc}") from None
        if mounted is None and uid == 0:
            self.diag(
                "sandbox: warning: the Expert runs as root and the workspace could not be mounted "
                "nosuid,nodev; set-id bits it sets are removed after the run"
            )
        return mounted or workspace

    def _not_scanned(self) -> list[str]:
        """Host directories the quota walk and the leftover scan never enter: the run's own temp dir and the
        hidden ones (job store, this tool's cache), which the Expert cannot write."""
        workspace = self.options.workspace.resolve()
        hidden = [str(workspace / d.removeprefix("/workspace/")) for d in _hidden_paths(self.options).dirs]
        return [*([str(self.run_dir)] if self.run_dir is not None else []), *hidden]

    def _watch_quota(self) -> None:
        """Start the total write bound just before the Expert starts (`_quota`)."""
        self.scan_since = self.scan_since or time.time_ns()
        self.quota = QuotaWatcher(
            self.options.workspace,
            self.plan.limits.workspace_quota_bytes,
            on_exceeded=lambda: self._requests.put("quota"),
            since_ns=self.scan_since - 1_000_000_000,
            prune=tuple(self._not_scanned()),
        )
        self.quota.start()

    def _scan_workspace(self) -> None:
        """Report (and strip set-id bits from) what the run left in the workspace (`_workspace_scan`)."""
        if self.scan_since is None or "expert" not in self.containers:
            return
        report = scan_workspace(self.options.workspace, self.scan_since, prune=self._not_scanned())
        for line in report_lines(report):
            self.diag(line)

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
        options = self.options
        wall = self._wall_clock()
        started = time.time()
        self.wall_clock_s = wall
        hidden = _hidden_paths(options)
        # The per-run key the runtime signs its event lines with (`sandbox._wire`): on stdin only.
        event_key = new_key()

        def payload(deadline: float) -> bytes:
            """The stdin line: the run as resolved, with the container's own deadline, and its secrets."""
            run = self.request.model_copy(update={"deadline": deadline})
            return WirePayload(run=run, env=secrets, event_key=event_key).to_line()

        gc: Future[Any] | None = None
        if self.settings.collect_garbage:
            gc = self.pool.submit(self._collect_garbage, connecting)

        standby = self._claim_standby(ca=ca, uid=uid, gid=gid, hidden=hidden, connecting=connecting)
        if standby is not None:
            self.scan_since = int(standby.created * 1e9)  # its skills may have started before the claim
            self._watch_quota()
            expert_stream, env_names = self._take_over(standby, payload, wall)
        else:
            labels = run_labels(run_id=self.run_id, job_id=self.job_id, deadline=started + wall + _GC_GRACE_S)
            compose = self._build_sandbox(labels, uid=uid, gid=gid, hidden=hidden, connecting=connecting)
            # The container's own guard fires after the host's (which normally handles it), so it only
            # matters when the host process is gone.
            deadline = time.time() + wall + min(30.0, wall)
            self.proxy_url = compose.services["expert"].environment.get("SANDBOX_PROXY_URL")
            expert_spec = _with_command(compose.services["expert"], expert_command(self.plan.provider))
            self._watch_quota()
            expert_stream = self._up(compose.services["proxy"], expert_spec, payload(deadline))
            env_names = list(expert_spec.environment)
        self.mark("started")
        resume_gc()  # the host's start-up (SDK, config, plan, render imports) is over
        self.check_cancel()  # a signal that came while the containers were being created
        self._timer(wall, self.on_timeout)
        pump = self._pump(expert_stream, store, env_names=[*secrets, *env_names], wire=WireReader(event_key))
        self.mark("output-closed")
        code = self._finish(pump)
        if gc is not None and gc.done() and gc.exception() is None:
            report = gc.result()
            if report.total() and options.verbose:
                self.diag(f"sandbox: removed leftovers of dead runs: {report.total()} object(s)")
        return code

    def _collect_garbage(self, connecting: Future[None]) -> Any:
        connecting.result()
        return collect_leftovers(self.backend, temp_root=self.settings.temp_root, keep_run=self.run_id)

    # ------------------------------------------------------------------------------------------ standby

    def _standby_key(self, *, ca: bytes | None, uid: int, gid: int, hidden: Hidden) -> str:
        return standby_key(
            plan=self.plan,
            config=self.options.config,
            workspace=self.options.workspace,
            uid=uid,
            gid=gid,
            hidden=hidden.key(),
            ca=ca,
        )

    def _claim_standby(
        self, *, ca: bytes | None, uid: int, gid: int, hidden: Hidden, connecting: Future[None]
    ) -> StandbyRecord | None:
        """A live standby of this very sandbox, now ours; None (a fresh sandbox then) when there is none."""
        if not self.settings.use_standby:
            return None
        pool = self.settings.standby_pool or StandbyPool.default(self.options.env)
        key = self._standby_key(ca=ca, uid=uid, gid=gid, hidden=hidden)
        record, expired = pool.claim(key)
        if record is None and not expired:
            return None
        connecting.result()
        for old in expired:
            self._background.append(self.pool.submit(remove_standby, self.backend, old))
        if record is None:
            return None
        # Ours from here on: a signal now must still tear it down.
        self.containers, self.run_dir = dict(record.containers), Path(record.run_dir)
        self.networks, self.network_names = list(record.networks), dict(record.networks)
        states = list(self.pool.map(self.backend.container_state, record.containers.values()))
        if all(state is not None and state.running for state in states):
            if self.options.verbose:
                self.diag(f"sandbox: using standby sandbox {record.id} (made by `sandbox warm`)")
            self.standby = record
            return record
        # Its runtime quit (idle timeout, killed): remove it in the background and build a fresh sandbox.
        self.containers, self.run_dir, self.networks, self.network_names = {}, None, [], {}
        self._background.append(self.pool.submit(remove_standby, self.backend, record))
        return None

    def _take_over(
        self, record: StandbyRecord, payload: Callable[[float], bytes], wall: float
    ) -> tuple[AttachedStream, list[str]]:
        """Attach to a claimed standby and hand it the run on stdin: the same line a fresh container gets."""
        backend = self.backend
        self.proxy_url = record.proxy_url
        deadline = time.time() + wall + min(30.0, wall)
        attaching = self.pool.submit(backend.attach, record.containers["proxy"], stdin=False, logs=True)
        stream = backend.attach(record.containers["expert"], stdin=True)
        self.streams.append(stream)
        proxy = attaching.result()
        self.streams.append(proxy)
        self._thread(lambda: self._read_proxy(proxy), "sandbox-proxy-log")
        stream.send(payload(deadline))
        self.status("expert", "running", f"standby {record.id}")
        return stream, list(record.env_names)

    def make_standby(self, *, ttl: float, refill: Sequence[str], refill_cwd: str) -> StandbyRecord:
        """Create one standby sandbox for this plan and return its record (the caller publishes it).

        Everything a run would create, with the Expert's runtime started in standby mode: imports done,
        proxy reached, waiting on stdin. Returns once it says it is ready; tears down what it made on error.
        """
        self.mark("start")
        from sandbox.steering import check_workspace

        check_workspace(self.options.workspace, self.options.env)
        uid, gid = _user(self.settings, self.options.env, self.options.workspace)
        ca = self.resolved.ca_bundle
        hidden = _hidden_paths(self.options)
        key = self._standby_key(ca=ca, uid=uid, gid=gid, hidden=hidden)
        self.job_id = "standby"
        self.run_id = self.host_run_id = create_id()
        created = time.time()
        expires = created + ttl
        labels = standby_labels(run_id=self.run_id, key=key, deadline=expires + _GC_GRACE_S)
        connecting = self.pool.submit(lambda: self.backend.ping())  # noqa: PLW0108
        try:
            compose = self._build_sandbox(labels, uid=uid, gid=gid, hidden=hidden, connecting=connecting)
            spec = compose.services["expert"]
            expert_spec = replace(
                spec,
                stdin_once=False,
                command=("--standby", "--idle", str(int(ttl)), "--provider", self.plan.provider),
            )
            self._up_standby(compose.services["proxy"], expert_spec)
            assert self.run_dir is not None
            record = StandbyRecord(
                id=self.run_id,
                key=key,
                expert=self.options.expert_key,
                containers=dict(self.containers),
                networks=dict(self.network_names),
                run_dir=str(self.run_dir),
                proxy_url=spec.environment.get("SANDBOX_PROXY_URL"),
                env_names=tuple(spec.environment),
                created=created,
                expires=expires,
                refill=tuple(refill),
                refill_cwd=refill_cwd,
            )
        except BaseException:
            self.teardown()
            raise
        for stream in self.streams:
            stream.close()
        self.pool.shutdown(wait=False)
        return record

    def _up_standby(self, proxy_spec: ContainerSpec, expert_spec: ContainerSpec) -> None:
        """Start the standby's containers and wait for its runtime's ready line (or its last words)."""
        stream = self._start_containers(proxy_spec, expert_spec, stdin=False, proxy_log=False)
        tail: deque[str] = deque(maxlen=20)
        splitter = LineSplitter()
        timer = self._timer(_STANDBY_READY_S, stream.close)
        for _, chunk in stream.frames():
            for line in splitter.feed(chunk):
                if is_ready_line(line):
                    timer.cancel()
                    return
                tail.append(line)
        lines = "\n".join(f"  {line}" for line in tail) or "  (no output)"
        raise RunError(
            f"the standby sandbox did not become ready; the Expert container's last lines:\n{lines}"
        )

    # ------------------------------------------------------------------------------------------ images

    def _images(self, ctx: RenderedContext) -> ImageSet:
        reporters: list[BuildReporter] = []
        if self.settings.progress:
            reporters.append(ConsoleBuildReporter(self.err))
        if self.options.verbose:
            reporters.append(EventBuildReporter(self.emit, job_id=self.job_id, run_id=self.run_id))
        reporter = TeeReporter(*reporters)
        cache = self.settings.skills_cache or SkillsCache.default(self.options.env)
        try:
            images = ensure_images(
                self.backend,
                ctx,
                self.plan,
                reporter=reporter,
                labels={RUN_LABEL: self.host_run_id, JOB_LABEL: self.job_id},
                cancelled=self.cancel.is_set,
                cache=cache,
                skills=False,
                pool=self.pool,
            )
        finally:
            reporter.close()
        if images.built:
            for line in format_skills(images.skills):
                self.diag(f"sandbox: skill {line}")
        if self.options.verbose and not images.built:
            self.emit(
                DockerBuildProgress(
                    job_id=self.job_id,
                    run_id=self.run_id,
                    stage="complete",
                    service="expert",
                    message=f"images up to date: {images.expert}, {images.proxy}",
                )
            )
        return images

    def _write(self, ctx: RenderedContext) -> ComposeProject:
        assert self.run_dir is not None
        ctx.write(self.run_dir)
        return load_compose(self.run_dir / "compose.yaml")

    # ------------------------------------------------------------------------------------------ sandbox

    def _networks(self, compose: ComposeProject) -> None:
        """The run's own networks in parallel; a shared (external) one is only made sure of."""
        futures: list[tuple[str, Future[str | None]]] = [
            (spec.name, self.pool.submit(self._network, spec)) for spec in compose.networks.values()
        ]
        errors: list[BaseException] = []
        for name, future in futures:
            try:
                nid = future.result()
                if nid is not None:
                    self.networks.append(nid)
                    self.network_names[nid] = name
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _network(self, spec: NetworkSpec) -> str | None:
        return create_network(self.backend, spec)

    def _remove_networks(self) -> None:
        networks, self.networks = self.networks, []
        for future in [self.pool.submit(self.backend.remove_network, n) for n in networks]:
            with contextlib.suppress(DockerError):
                future.result()

    def _up(self, proxy_spec: ContainerSpec, expert_spec: ContainerSpec, payload: bytes) -> AttachedStream:
        """Start both containers and hand the Expert its one stdin line (then EOF)."""
        stream = self._start_containers(proxy_spec, expert_spec, stdin=True, proxy_log=True)
        stream.send(payload)
        stream.close_stdin()
        return stream

    def _start_containers(
        self, proxy_spec: ContainerSpec, expert_spec: ContainerSpec, *, stdin: bool, proxy_log: bool
    ) -> AttachedStream:
        """Create and start the proxy and the Expert in parallel; the Expert's stream, attached before start.

        `proxy_log`: follow the proxy's output (access events, and "the proxy died" stops the Expert). A
        standby being made does not: `sandbox warm` exits once it is ready, and the run follows it then.
        """
        backend = self.backend
        self.specs = {"proxy": proxy_spec, "expert": expert_spec}
        expert_started = threading.Event()

        def up_proxy() -> None:
            cid = backend.create_container(proxy_spec)
            self.mark("up-proxy-created")
            self.containers["proxy"] = cid
            if proxy_log:
                stream = backend.attach(cid, stdin=False)
                self.streams.append(stream)
                self._thread(lambda: self._read_proxy(stream), "sandbox-proxy-log")
            self.status("proxy", "starting")
            # The Expert's start-up (Python, the runtime's imports) is the critical path and the proxy is
            # needed only when it makes its first request: let the engine start the Expert first.
            expert_started.wait(10)
            try:
                backend.start_container(cid)
            except DockerError as exc:
                raise RunError(f"the proxy failed to start: {exc}") from exc
            self.mark("up-proxy-started")
            self.status("proxy", "running")

        def up_expert() -> AttachedStream:
            cid = backend.create_container(expert_spec)
            self.mark("up-expert-created")
            self.containers["expert"] = cid
            stream = backend.attach(cid, stdin=stdin)
            self.mark("up-expert-attached")
            self.streams.append(stream)
            self.status("expert", "starting")
            try:
                backend.start_container(cid)
            finally:
                expert_started.set()
            self.mark("up-expert-started")
            self.status("expert", "running")
            return stream

        proxy_future = self.pool.submit(up_proxy)
        expert_future = self.pool.submit(up_expert)
        errors: list[BaseException] = []
        stream: AttachedStream | None = None
        for name, future in (("proxy", proxy_future), ("expert", expert_future)):
            try:
                result = future.result()
                if name == "expert":
                    stream = result
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        assert stream is not None
        return stream

    # ------------------------------------------------------------------------------------------ proxy log

    def _read_proxy(self, stream: AttachedStream) -> None:
        splitter = LineSplitter()
        try:
            for _, chunk in stream.frames():
                for line in splitter.feed(chunk):
                    self._proxy_line(line)
            for line in splitter.flush():
                self._proxy_line(line)
        except DockerError:
            pass
        finally:
            self.proxy.exited.set()
            if not self.finishing.is_set() and self.containers.get("expert"):
                # The only way out is gone: stop the Expert now instead of letting it retry into a wall.
                self.proxy_died = True
                self.kill_expert()

    def _proxy_line(self, line: str) -> None:
        self.proxy.last_line = time.monotonic()
        self.proxy.tail.append(line)
        if self.feed is None:
            return
        access = self.feed.line(line, job_id=self.job_id, run_id=self.run_id)
        if access is not None:
            self.emit(access)
        elif self.feed.is_ready(line):
            self.proxy.ready.set()
            self.status("proxy", "healthy", "accepting connections")
        elif self.options.verbose:
            self.diag(f"proxy: {line}")

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
        answer: InteractiveToolCallResult | None = None

        def setting(
            run_id: str, expert_key: str, text: str | None, init: InitializeRuntime | None
        ) -> RunSetting:
            nonlocal answer
            if init is not None and init.interactive_tool_call is not None:
                answer = self._answer(store, init)
            return self._run_setting(
                run_id,
                expert_key,
                text,
                env_names=env_names,
                checkpoint_answer=answer if init else None,
            )

        def on_run_id(run_id: str) -> None:
            self.run_id = run_id
            if self.feed is not None:
                self.feed.set_run(store, self.job_id, run_id)

        def on_terminal(event: EventBase) -> None:
            self.mark("terminal-event")
            # The run is over; a skill that will not exit must not keep the user waiting.
            self._timer(self.settings.exit_grace_s, self.kill_expert)

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
            on_first=lambda: self.mark("first-event"),
            wire=wire,
        )
        splitters = {1: LineSplitter(), 2: LineSplitter()}
        try:
            for stream_id, chunk in stream.frames():
                handler = pump.stdout_line if stream_id == STDOUT else pump.stderr_line
                for line in splitters.get(stream_id, splitters[2]).feed(chunk):
                    handler(line)
        except DockerError as exc:
            if not self.cancel.is_set():
                self.diag(f"sandbox: lost the Expert's output stream: {exc}")
        for stream_id, splitter in splitters.items():
            for line in splitter.flush():
                (pump.stdout_line if stream_id == STDOUT else pump.stderr_line)(line)
        return pump

    def _answer(self, store: JobStore, init: InitializeRuntime) -> InteractiveToolCallResult | None:
        ref = init.interactive_tool_call
        if ref is None:
            return None
        skill = ""
        checkpoint = self.checkpoint
        for call in (checkpoint.pending_tool_calls or []) if checkpoint else []:
            if call.id == ref.tool_call_id:
                skill = call.skill_name
        return InteractiveToolCallResult(
            tool_call_id=ref.tool_call_id, tool_name=ref.tool_name, skill_name=skill, text=ref.text
        )

    def _finish(self, pump: EventPump) -> int:
        cid = self.containers["expert"]
        code = pump.exit_code()
        if (
            code is not None
            and not pump.store_errors
            and not self.cancel.is_set()
            and not self.timed_out.is_set()
            and not self.quota_hit.is_set()
        ):
            # The terminal event decides the outcome. The engine's own handling of the container's exit
            # (releasing its network endpoint and mounts, ~0.1 s) then overlaps the proxy drain instead of
            # preceding it; the container's removal waits for it (`_remove_all`).
            self._expert_exit = self.pool.submit(self._wait_expert, cid)
            return code
        exit_code = self._wait_expert(cid)
        if self.cancel.is_set():
            return 130  # run() replaces it with the signal's code
        if self.quota_hit.is_set() and self.quota is not None:
            self.diag(self.quota.message())
            return 1
        if self.timed_out.is_set():
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
            exit_code = self.backend.wait_container(cid, timeout=30)
        self.status("expert", "stopped", f"exit code {exit_code}")
        return exit_code

    def _explain_no_terminal(self, pump: EventPump, exit_code: int | None) -> None:
        """Say why a run ended without a terminal event; a proxy that never came up is a RunError."""
        if self.proxy_died and not self.proxy.ready.is_set():
            code = None
            with contextlib.suppress(DockerError):
                state = self.backend.container_state(self.containers["proxy"])
                code = state.exit_code if state else None
            tail = "\n".join(f"  {line}" for line in list(self.proxy.tail)[-12:])
            raise RunError(f"the proxy failed to start (exit code {code}); its last lines:\n{tail}")
        lines = [f"sandbox: the Expert's container exited (code {exit_code}) without a terminal event"]
        state = None
        with contextlib.suppress(DockerError):
            state = self.backend.container_state(self.containers["expert"])
        if state is not None and state.oom_killed:
            lines.append(f"  it ran out of memory (limit {self.plan.limits.memory}; raise it with --memory)")
        if self.proxy_died:
            lines.append("  the proxy exited during the run; its last lines:")
            lines += [f"    {line}" for line in list(self.proxy.tail)[-10:]]
        if pump.tail:
            lines.append("  last output lines:")
            lines += [f"    {line}" for line in list(pump.tail)[-15:]]
        self.diag("\n".join(lines))

    # ------------------------------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        """Remove everything this run created. Never raises; what fails is reported with a fix."""
        self.finishing.set()
        for timer in self._timers:
            timer.cancel()
        self._drain_proxy_log()
        self.mark("proxy-drained")
        problems: list[str] = []
        backend = self._backend
        if backend is not None:
            self._remove_all(backend, problems)
        self.mark("removed")
        if self.quota is not None:
            self.quota.stop()
        self._scan_workspace()  # the Expert's processes are gone now: nothing changes under the scan
        self.mark("scanned")
        if self.feed is not None:
            self.feed.close((self.store, self.job_id, self.run_id) if self.store is not None else None)
        if self.run_dir is not None:
            if release_mounts(self.run_dir):  # never delete through the workspace mount
                shutil.rmtree(self.run_dir, ignore_errors=True)
            if self.run_dir.exists():
                problems.append(f"temp dir {self.run_dir}")
        for future in self._background:
            with contextlib.suppress(Exception):
                future.result(timeout=60)
        for thread in self._threads:
            thread.join(timeout=2)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.mark("torn-down")
        if self.options.env.get("SANDBOX_DEBUG_TIMINGS"):
            start = self.marks.get("start", 0.0)
            ordered = sorted(self.marks.items(), key=lambda kv: kv[1])
            parts = " ".join(f"{k}={v - start:.3f}" for k, v in ordered)
            age = _process_age(start)
            parts += f" (process started {age:.3f} s before start)" if age is not None else ""
            self.diag(f"sandbox: timings (s since start): {parts}")
        if problems:
            self.diag(
                "sandbox: teardown could not remove: "
                + "; ".join(problems)
                + " (run `sandbox clean` to retry)"
            )

    def _remove_all(self, backend: ContainerBackend, problems: list[str]) -> None:
        """Containers in parallel; each network as soon as the containers attached to it are gone."""

        def remove_container(svc: str, cid: str) -> None:
            if svc == "expert" and self._expert_exit is not None:
                with contextlib.suppress(Exception):
                    self._expert_exit.result(timeout=35)
                self.mark("rm-expert-exited")
            backend.remove_container(cid)
            self.mark(f"rm-{svc}")

        removals = {svc: self.pool.submit(remove_container, svc, cid) for svc, cid in self.containers.items()}

        def remove_network(nid: str) -> None:
            name = self.network_names.get(nid)
            for svc, future in removals.items():
                spec = self.specs.get(svc)  # a taken-over standby has no specs here: wait for every container
                if spec is None or any(a.network == name for a in spec.networks):
                    with contextlib.suppress(Exception):
                        future.result(timeout=60)
            self.mark("rmnet-start")
            backend.remove_network(nid)
            self.mark("rmnet")

        networks = [(nid, self.pool.submit(remove_network, nid)) for nid in self.networks]
        for what, future in [
            *((f"container {s}", f) for s, f in removals.items()),
            *((f"network {self.network_names.get(n, n)}", f) for n, f in networks),
        ]:
            try:
                future.result(timeout=90)
            except Exception as exc:
                problems.append(f"{what}: {exc}")
        for stream in self.streams:
            stream.close()

    def _drain_proxy_log(self) -> None:
        """Give the proxy a moment to log the Expert's last connections (it logs a tunnel when it closes)."""
        if "proxy" not in self.containers or self.proxy.exited.is_set():
            return
        end = time.monotonic() + 0.25
        while time.monotonic() < end:
            if time.monotonic() - self.proxy.last_line > 0.03:
                return
            time.sleep(0.01)


def create_network(backend: ContainerBackend, spec: NetworkSpec) -> str | None:
    """Create one of a sandbox's networks and return its id (the caller removes it), or, for the shared
    (external) egress network, only make sure it exists and return None: it is never a run's to remove."""
    if spec.external:
        ensure_shared_network(backend, spec.name)
        return None
    return backend.create_network(spec)


def ensure_shared_network(backend: ContainerBackend, name: str) -> None:
    """Create the shared egress network `name` unless it exists (a concurrent run creating it is fine).

    Inter-container traffic is off on it: the proxies of concurrent sandboxes share it and must not reach
    each other. Labelled as this tool's, with no owner or deadline, so only `sandbox clean --all` removes it.
    """
    spec = NetworkSpec(
        name=name,
        labels={TOOL_LABEL: TOOL_NAME, ROLE_LABEL: "egress"},
        options={"com.docker.network.bridge.enable_icc": "false"},
    )
    with contextlib.suppress(NetworkExists):
        backend.create_network(spec)


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


@dataclass(frozen=True)
class Hidden:
    """What the Expert must not see of the workspace: container paths covered by an empty read-only tmpfs
    (`dirs`) or an empty read-only file (`files`). See `sandbox.steering`."""

    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def key(self) -> tuple[str, ...]:
        """Both lists as one, for the standby key: a standby hides exactly what a run would."""
        return (*self.dirs, *(f"file:{f}" for f in self.files))


def _hidden_paths(options: RunOptions) -> Hidden:
    """The steering files and directories inside the workspace, as container paths to cover.

    Always the job store: the host resumes from the checkpoints there, so the Expert must neither read other
    jobs nor forge one. It is created first so the engine does not create the mount point as root. Then what
    `options.steering` names (perstack.toml, env files, this tool's cache, the Docker client's config).
    """
    from sandbox.steering import SteeringPaths, mask_targets

    workspace, jobs = options.workspace.resolve(), options.jobs_dir.resolve()
    try:
        inside = bool(jobs.relative_to(workspace).parts)
    except ValueError:
        inside = False
    if inside:
        jobs.mkdir(parents=True, exist_ok=True)
    steering = options.steering
    store = jobs.parent
    steering = SteeringPaths(files=steering.files, dirs=(store, *(d for d in steering.dirs if d != store)))
    dirs, files = mask_targets(workspace, steering)
    return Hidden(dirs=dirs, files=files)


def _with_command(spec: ContainerSpec, command: Sequence[str]) -> ContainerSpec:
    return replace(spec, command=tuple(command))


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
    run = _DockerRun(options, plan, emit, backend, settings or DockerSettings())
    return run.run()
