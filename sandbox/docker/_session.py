"""`SandboxSession`: what one sandbox created, on the engine and on the host, and the one teardown of it.

A run, `sandbox warm` (making a standby) and `sandbox audit` each create containers, networks, attached
streams, a private run dir, helper threads and timers. They differ in what they create, not in how it must
be removed, and the removal is where the guarantees live: nothing is left on success, failure, timeout or a
signal; a network is removed only after the containers attached to it; the workspace mount is released
before the run dir is deleted through it. So the bookkeeping and the teardown are written once, here, and
each caller records what it made as it makes it (a signal between two steps still tears down the first).

Teardown order (every step runs even when an earlier one failed; nothing raises)::

    timers cancelled -> before-removal hooks (e.g. drain the proxy's last log lines)
      -> containers removed in parallel (one waits for its `wait_before_removing` future first)
      -> each network once the containers attached to it are gone -> streams closed
      -> after-removal hooks (e.g. stop the quota walk, scan the workspace: nothing writes there any more)
      -> run dir: mounts released, then deleted -> background work, threads joined -> thread pool closed

Problems come back as short phrases ("container expert: ..."); the caller words them for its user.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox._errors import DockerError

from ._backend import AttachedStream, ContainerBackend, ContainerSpec, NetworkExists, NetworkSpec
from ._labels import ROLE_LABEL, TOOL_LABEL, TOOL_NAME
from ._workspace_mount import release_mounts

__all__ = ["SandboxSession", "create_network", "ensure_shared_network", "teardown_line"]

Hook = Callable[[], None]


class SandboxSession:
    """The objects one sandbox created, recorded as they are made, and their removal (`teardown`).

    `backend`: the engine; None creates a `DockerBackend` from `environ` on first use (so importing the SDK
    can overlap other start-up work, and a session that never touched the engine never imports it).
    `name`: the prefix of its worker threads. Thread-safe for recording from its own pool's workers.
    """

    def __init__(
        self, backend: ContainerBackend | None = None, *, environ: Mapping[str, str] | None = None, name: str
    ) -> None:
        self._backend = backend
        self._environ = dict(environ or {})
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=name)
        self.containers: dict[str, str] = {}  # service -> container id, in creation order
        self.networks: dict[str, str] = {}  # network id -> name (only the ones this session must remove)
        self.specs: dict[str, ContainerSpec] = {}  # service -> spec, when known: which networks it is on
        self.streams: list[AttachedStream] = []
        self.run_dir: Path | None = None
        self.finishing = threading.Event()  # set when teardown begins: what dies now is expected to
        self.marks: dict[str, float] = {}
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._background: list[Future[Any]] = []
        self._waits: dict[str, Future[Any]] = {}
        self._before: list[Hook] = []
        self._after: list[Hook] = []
        self._lock = threading.Lock()
        self._torn_down = False

    # ------------------------------------------------------------------------------------------ engine

    @property
    def backend(self) -> ContainerBackend:
        if self._backend is None:
            from ._sdk import DockerBackend

            self._backend = DockerBackend(environ=self._environ)
        return self._backend

    @property
    def engine_used(self) -> bool:
        """Whether anything reached the engine (else there is nothing on it to remove)."""
        return self._backend is not None

    def mark(self, name: str) -> None:
        """Record a phase boundary once (for `SANDBOX_DEBUG_TIMINGS`)."""
        self.marks.setdefault(name, time.perf_counter())

    # ------------------------------------------------------------------------------------------ recording

    def record_container(self, service: str, cid: str, spec: ContainerSpec | None = None) -> None:
        with self._lock:
            self.containers[service] = cid
            if spec is not None:
                self.specs[service] = spec

    def record_network(self, nid: str, name: str) -> None:
        with self._lock:
            self.networks[nid] = name

    def add_stream(self, stream: AttachedStream) -> AttachedStream:
        with self._lock:
            self.streams.append(stream)
        return stream

    def thread(self, target: Callable[[], None], name: str) -> None:
        """A daemon helper thread, joined (briefly) at teardown."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def timer(self, seconds: float, action: Callable[[], None]) -> threading.Timer:
        """A daemon timer, cancelled at teardown (so no action fires on removed objects)."""
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        timer.start()
        self._timers.append(timer)
        return timer

    def background(self, future: Future[Any]) -> None:
        """Work teardown must wait for (up to a minute), e.g. removing another sandbox's leftovers."""
        self._background.append(future)

    def wait_before_removing(self, service: str, future: Future[Any]) -> None:
        """Remove `service`'s container only once `future` is done (the engine handling its exit)."""
        self._waits[service] = future

    def before_removal(self, hook: Hook) -> None:
        self._before.append(hook)

    def after_removal(self, hook: Hook) -> None:
        self._after.append(hook)

    def signal(self, service: str, signal: str) -> None:
        """Send `signal` to `service`'s container if it exists; an engine error is ignored (it is gone)."""
        cid = self.containers.get(service)
        if cid is not None:
            with contextlib.suppress(DockerError):
                self.backend.kill_container(cid, signal)

    # ------------------------------------------------------------------------------------------ networks

    def create_networks(self, specs: Iterable[NetworkSpec]) -> None:
        """Create the networks in parallel and record the session's own; the first error is raised (the
        ones that were created are recorded, so teardown removes them)."""
        futures = [(spec.name, self.pool.submit(create_network, self.backend, spec)) for spec in specs]
        errors: list[BaseException] = []
        for name, future in futures:
            try:
                nid = future.result()
                if nid is not None:
                    self.record_network(nid, name)
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def remove_networks(self) -> None:
        """Remove the recorded networks now (before trying another subnet); errors are ignored."""
        with self._lock:
            networks, self.networks = list(self.networks), {}
        for future in [self.pool.submit(self.backend.remove_network, n) for n in networks]:
            with contextlib.suppress(DockerError):
                future.result()

    # ------------------------------------------------------------------------------------------ standbys

    def adopt(self, containers: Mapping[str, str], networks: Mapping[str, str], run_dir: Path) -> None:
        """Take over objects another process made (a claimed standby): from here on they are this
        session's to remove, so a signal right after the claim still tears them down."""
        with self._lock:
            self.containers, self.networks, self.run_dir = dict(containers), dict(networks), run_dir

    def disown(self) -> None:
        """Forget the recorded objects without removing them (a claimed standby that turned out dead is
        removed in the background instead)."""
        with self._lock:
            self.containers, self.networks, self.specs, self.run_dir = {}, {}, {}, None

    def detach(self) -> None:
        """End the session leaving its objects in place (a standby that outlives `sandbox warm`): streams
        closed, timers cancelled, the pool released; teardown does nothing after this."""
        self._torn_down = True
        for timer in self._timers:
            timer.cancel()
        for stream in self.streams:
            with contextlib.suppress(Exception):
                stream.close()
        self.pool.shutdown(wait=False)

    # ------------------------------------------------------------------------------------------ teardown

    def teardown(self) -> list[str]:
        """Remove everything recorded, in the order the module docstring gives; once. Never raises."""
        if self._torn_down:
            return []
        self._torn_down = True
        self.finishing.set()
        for timer in self._timers:
            timer.cancel()
        problems: list[str] = []
        self._hooks(self._before, problems)
        if self._backend is not None:  # `engine_used`: else nothing was created on the engine
            self._remove_objects(self._backend, problems)
        self.mark("removed")
        self._hooks(self._after, problems)
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
        return problems

    @staticmethod
    def _hooks(hooks: list[Hook], problems: list[str]) -> None:
        for hook in hooks:
            try:
                hook()
            except Exception as exc:  # a hook's failure must not stop the removal
                problems.append(f"{getattr(hook, '__name__', 'hook')}: {exc}")

    def _remove_objects(self, backend: ContainerBackend, problems: list[str]) -> None:
        """Containers in parallel; each network as soon as the containers attached to it are gone."""

        def remove_container(service: str, cid: str) -> None:
            wait = self._waits.get(service)
            if wait is not None:
                with contextlib.suppress(Exception):
                    wait.result(timeout=35)
                self.mark(f"rm-{service}-exited")
            backend.remove_container(cid)
            self.mark(f"rm-{service}")

        removals = {s: self.pool.submit(remove_container, s, cid) for s, cid in self.containers.items()}

        def remove_network(nid: str) -> None:
            name = self.networks.get(nid)
            for service, future in removals.items():
                spec = self.specs.get(service)  # unknown (an adopted standby, a helper): wait for it
                if spec is None or any(a.network == name for a in spec.networks):
                    with contextlib.suppress(Exception):
                        future.result(timeout=60)
            self.mark("rmnet-start")
            backend.remove_network(nid)
            self.mark("rmnet")

        networks = [(nid, self.pool.submit(remove_network, nid)) for nid in self.networks]
        for what, future in [
            *((f"container {s}", f) for s, f in removals.items()),
            *((f"network {self.networks.get(n, n)}", f) for n, f in networks),
        ]:
            try:
                future.result(timeout=90)
            except Exception as exc:
                problems.append(f"{what}: {exc}")
        for stream in self.streams:
            with contextlib.suppress(Exception):
                stream.close()


def teardown_line(problems: list[str]) -> str | None:
    """What a run or `sandbox warm` tells the user about `teardown`'s problems, with the fix; None if none."""
    if not problems:
        return None
    return "sandbox: teardown could not remove: " + "; ".join(problems) + " (run `sandbox clean` to retry)"


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
