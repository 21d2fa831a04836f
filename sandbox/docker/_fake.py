"""`FakeBackend`: an in-memory container engine for unit tests (httpx's `MockTransport` for Docker).

Containers run *programs*: Python callables given a `FakeProcess` (argv, stdin, stdout/stderr writers,
signals) and returning an exit code, each in its own thread from `start_container` on. So a test scripts
what "the Expert" prints, checks what it received on stdin, simulates a crash, a hang, a SIGTERM handled
gracefully or a proxy that dies, and then asserts on `calls` (every backend call, in order) and on what is
left (`containers`, `networks`): the teardown guarantees are checked without Docker.

A fake Expert prints its events with `FakeProcess.event`, which signs them like the real runtime does
(`sandbox._wire`, with the key from the stdin payload); `stdout` writes raw bytes, as a forger would.

Shipped in the package, like pydantic-ai's `TestModel`, so that anyone embedding the executor can test too.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox._errors import DockerError, RunError

from ._backend import (
    STDERR,
    STDOUT,
    BuildRequest,
    ContainerSpec,
    ContainerState,
    NetworkExists,
    NetworkSpec,
    ObjectInfo,
    SubnetTaken,
)

__all__ = ["FakeBackend", "FakeContainer", "FakeProcess", "FakeProgram", "idle_program"]

_EOF = object()


class FakeProcess:
    """What a fake container's program sees."""

    def __init__(self, container: FakeContainer) -> None:
        self._c = container
        self.argv: tuple[str, ...] = container.spec.command or ()
        self.spec = container.spec
        self.signals: queue.Queue[str] = queue.Queue()
        self.killed = threading.Event()
        self._key: str | None = None
        self._seq = 0

    def read_stdin(self, timeout: float = 10.0) -> bytes:
        """Everything written to stdin, once it is closed (or after `timeout`)."""
        self._c.stdin_closed.wait(timeout)
        return bytes(self._c.stdin)

    def stdout(self, text: str | bytes) -> None:
        self._c.output.put((STDOUT, text.encode() if isinstance(text, str) else text))

    def event(self, event: Any, *, split: bool = False, end: str = "\n") -> None:
        """Print one event (a `sandbox.events` model or its JSON text) signed and numbered as the runtime
        does; `split`: in two output frames, to exercise the host's re-assembly."""
        from sandbox._wire import sign_line

        if self._key is None:
            self._key = self.event_key()
        body = event if isinstance(event, str) else _event_json(event)
        data = (sign_line(self._key, self._seq, body) + end).encode()
        self._seq += 1
        if split:
            self.stdout(data[: len(data) // 2])
            self.stdout(data[len(data) // 2 :])
        else:
            self.stdout(data)

    def event_key(self, timeout: float = 10.0) -> str:
        """The run's event key, from the first JSON line on stdin (a run's payload or a standby's claim)."""
        end = time.monotonic() + timeout
        while b"\n" not in self._c.stdin and not self._c.stdin_closed.is_set() and time.monotonic() < end:
            time.sleep(0.005)
        first = bytes(self._c.stdin).split(b"\n", 1)[0]
        key = json.loads(first).get("eventKey") if first.strip() else None
        if not isinstance(key, str):
            raise RunError("fake Expert: no eventKey in the stdin payload")
        return key

    def stderr(self, text: str | bytes) -> None:
        self._c.output.put((STDERR, text.encode() if isinstance(text, str) else text))

    def wait_signal(self, timeout: float | None = None) -> str | None:
        """Block until a signal arrives (SIGKILL included); its name, or None after `timeout`."""
        try:
            return self.signals.get(timeout=timeout)
        except queue.Empty:
            return None


def _event_json(event: Any) -> str:
    from sandbox.events import event_to_json

    return event_to_json(event)


FakeProgram = Callable[[FakeProcess], int]


def idle_program(proc: FakeProcess) -> int:
    """Runs until signalled, like a proxy: exits 0 on SIGTERM, 137 on SIGKILL."""
    sig = proc.wait_signal()
    return 137 if sig == "SIGKILL" else 0


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    program: FakeProgram
    state: str = "created"  # created | running | exited
    exit_code: int | None = None
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: threading.Event = field(default_factory=threading.Event)
    output: queue.Queue[Any] = field(default_factory=queue.Queue)
    process: FakeProcess | None = None
    thread: threading.Thread | None = None
    logs: list[str] = field(default_factory=list)


class _FakeStream:
    def __init__(self, backend: FakeBackend, container: FakeContainer) -> None:
        self._b = backend
        self._c = container
        self._closed = threading.Event()

    def send(self, data: bytes) -> None:
        if self._c.stdin_closed.is_set():
            raise RunError("stdin already closed")
        self._c.stdin += data
        self._b._record("send", self._c.spec.service, str(len(data)))

    def close_stdin(self) -> None:
        self._c.stdin_closed.set()
        self._b._record("close_stdin", self._c.spec.service)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        while not self._closed.is_set():
            try:
                item = self._c.output.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _EOF:
                self._c.output.put(_EOF)  # let a second reader see the end too
                return
            stream, data = item
            self._c.logs.extend(data.decode("utf-8", "replace").splitlines())
            yield stream, data

    def close(self) -> None:
        self._closed.set()


class FakeBackend:
    """An in-memory `ContainerBackend`. See the module docstring.

    **Parameters:**

    * `images`: tags present at start (base images, or prebuilt sandbox images for warm-run tests).
    * `programs`: program per service name (`proxy`, `expert`); unknown services get `idle_program`.
    * `build_messages`: `request -> messages` to script a build (default: three steps, then success).
    * `image_files`: `(image, path) -> bytes` for `read_file_from_image`.
    * `taken_subnets`: subnets already used by "other" networks.
    * `fail`: `operation name -> DockerError` raised by that operation (e.g. `{"start:proxy": RunError(..)}`).
    """

    def __init__(
        self,
        *,
        images: set[str] | None = None,
        programs: Mapping[str, FakeProgram] | None = None,
        build_messages: Callable[[BuildRequest], list[dict[str, Any]]] | None = None,
        image_files: Mapping[tuple[str, str], bytes] | None = None,
        taken_subnets: list[str] | None = None,
        fail: Mapping[str, DockerError] | None = None,
        reachable: bool = True,
    ) -> None:
        self.images: set[str] = set(images or ())
        self.programs = dict(programs or {})
        self.build_messages = build_messages
        self.image_files = dict(image_files or {})
        self.taken_subnets = list(taken_subnets or [])
        self.fail = dict(fail or {})
        self.reachable = reachable
        self.calls: list[tuple[str, ...]] = []
        self.builds: list[BuildRequest] = []
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, NetworkSpec] = {}
        self.network_labels: dict[str, Mapping[str, str]] = {}
        self.removed_images: list[str] = []
        self._lock = threading.RLock()
        self._next = 0

    # ------------------------------------------------------------------------------------------ helpers

    def _record(self, *call: str) -> None:
        with self._lock:
            self.calls.append(call)

    def _check(self, op: str) -> None:
        if not self.reachable:
            raise DockerError("the Docker engine is unreachable (fake)", hint="start it")
        error = self.fail.get(op)
        if error is not None:
            raise error

    def _id(self, prefix: str) -> str:
        with self._lock:
            self._next += 1
            return f"{prefix}{self._next:04d}"

    def _find(self, ref: str) -> FakeContainer | None:
        with self._lock:
            if ref in self.containers:
                return self.containers[ref]
            return next((c for c in self.containers.values() if c.spec.name == ref), None)

    def call_names(self) -> list[str]:
        """`calls` as `op:service` strings, for compact ordering asserts."""
        return [":".join(c[:2]) for c in self.calls]

    # ------------------------------------------------------------------------------------------ engine

    def ping(self) -> None:
        self._record("ping")
        self._check("ping")

    def close(self) -> None:
        self._record("close")

    # ------------------------------------------------------------------------------------------ images

    def image_exists(self, ref: str) -> bool:
        self._record("image_exists", ref)
        self._check("image_exists")
        return ref in self.images

    def build(self, request: BuildRequest) -> Iterator[dict[str, Any]]:
        self._record("build", request.service, request.tag)
        self._check(f"build:{request.service}")
        self.builds.append(request)
        messages: list[dict[str, Any]] = (
            self.build_messages(request)
            if self.build_messages
            else [
                {"stream": "Step 1/3 : FROM base\n"},
                {"stream": " ---> abc\n"},
                {"stream": "Step 2/3 : RUN install\n"},
                {"stream": "installing\n"},
                {"stream": "Step 3/3 : LABEL x=y\n"},
                {"aux": {"ID": "sha256:feed"}},
                {"stream": f"Successfully tagged {request.tag}\n"},
            ]
        )
        failed = False
        for message in messages:
            failed = failed or "error" in message
            yield message
        if not failed:
            self.images.add(request.tag)

    def read_file_from_image(self, image: str, path: str) -> bytes | None:
        self._record("read_file_from_image", image, path)
        self._check("read_file_from_image")
        return self.image_files.get((image, path))

    def list_images(self, labels: Mapping[str, str]) -> list[ObjectInfo]:
        self._record("list_images")
        return [
            ObjectInfo("image", tag, tag, {}) for tag in sorted(self.images) if tag.startswith("sandbox-")
        ]

    def remove_image(self, ref: str) -> None:
        self._record("remove_image", ref)
        self.images.discard(ref)
        self.removed_images.append(ref)

    # ------------------------------------------------------------------------------------------ networks

    def create_network(self, spec: NetworkSpec) -> str:
        self._record("create_network", spec.name)
        self._check(f"create_network:{spec.name}")
        with self._lock:
            if any(n.name == spec.name for n in self.networks.values()):
                raise NetworkExists(f"creating network {spec.name}: network {spec.name} already exists")
            if spec.subnet:
                mine = ipaddress.ip_network(spec.subnet)
                used = [*self.taken_subnets, *(n.subnet for n in self.networks.values() if n.subnet)]
                if any(mine.overlaps(ipaddress.ip_network(u)) for u in used if u):
                    raise SubnetTaken(f"Pool overlaps with other one on this address space ({spec.subnet})")
            nid = self._id("net")
            self.networks[nid] = spec
            return nid

    def remove_network(self, ref: str) -> None:
        self._record("remove_network", self.networks[ref].name if ref in self.networks else ref)
        self._check("remove_network")
        with self._lock:
            spec = self.networks.get(ref)
            if spec is None:
                return
            users = [
                c for c in self.containers.values() if any(a.network == spec.name for a in c.spec.networks)
            ]
            if users:
                raise RunError(f"error while removing network: network {spec.name} has active endpoints")
            del self.networks[ref]

    def list_networks(self, labels: Mapping[str, str]) -> list[ObjectInfo]:
        self._record("list_networks")
        with self._lock:
            return [
                ObjectInfo("network", nid, s.name, dict(s.labels))
                for nid, s in self.networks.items()
                if all(s.labels.get(k) == v for k, v in labels.items())
            ]

    def used_subnets(self) -> list[str]:
        self._record("used_subnets")
        with self._lock:
            return [*self.taken_subnets, *(n.subnet for n in self.networks.values() if n.subnet)]

    # ------------------------------------------------------------------------------------------ containers

    def create_container(self, spec: ContainerSpec) -> str:
        self._record("create_container", spec.service)
        self._check(f"create:{spec.service}")
        if spec.image not in self.images:
            raise DockerError(f"image not found: {spec.image}", hint="run `sandbox build`")
        with self._lock:
            names = {n.name for n in self.networks.values()}
            for attachment in spec.networks:
                if attachment.network not in names:
                    raise RunError(f"network {attachment.network} not found")
            cid = self._id("ctr")
            program = self.programs.get(spec.service, idle_program)
            self.containers[cid] = FakeContainer(cid, spec, program)
            return cid

    def attach(self, ref: str, *, stdin: bool, logs: bool = False) -> _FakeStream:
        container = self._find(ref)
        if container is None:
            raise RunError(f"no such container {ref}")
        self._record("attach", container.spec.service)
        return _FakeStream(self, container)

    def start_container(self, ref: str) -> None:
        container = self._find(ref)
        if container is None:
            raise RunError(f"no such container {ref}")
        self._record("start_container", container.spec.service)
        self._check(f"start:{container.spec.service}")
        proc = FakeProcess(container)
        container.process = proc
        container.state = "running"

        def run() -> None:
            try:
                code = container.program(proc)
            except Exception as exc:  # a crashing program is a container exiting 1
                proc.stderr(f"{type(exc).__name__}: {exc}\n")
                code = 1
            self._exit(container, code)

        container.thread = threading.Thread(target=run, daemon=True, name=f"fake-{container.spec.service}")
        container.thread.start()

    def _exit(self, container: FakeContainer, code: int) -> None:
        with self._lock:
            if container.state == "exited":
                return
            container.state = "exited"
            container.exit_code = code
        container.output.put(_EOF)

    def wait_container(self, ref: str, timeout: float | None = None) -> int:
        container = self._find(ref)
        self._record("wait_container", container.spec.service if container else ref)
        if container is None:
            raise RunError(f"no such container {ref}")
        if container.thread is not None and container.state != "exited":
            container.thread.join(timeout)
        return container.exit_code if container.exit_code is not None else -1

    def container_state(self, ref: str) -> ContainerState | None:
        container = self._find(ref)
        if container is None:
            return None
        return ContainerState(running=container.state == "running", exit_code=container.exit_code)

    def kill_container(self, ref: str, signal: str = "SIGKILL") -> None:
        container = self._find(ref)
        self._record("kill_container", container.spec.service if container else ref, signal)
        if container is None or container.state != "running" or container.process is None:
            return
        container.process.signals.put(signal)
        if signal == "SIGKILL":
            container.process.killed.set()
            self._exit(container, 137)

    def remove_container(self, ref: str) -> None:
        container = self._find(ref)
        self._record("remove_container", container.spec.service if container else ref)
        self._check("remove_container")
        if container is None:
            return
        if container.state == "running" and container.process is not None:
            container.process.signals.put("SIGKILL")
            container.process.killed.set()
            self._exit(container, 137)
        with self._lock:
            self.containers.pop(container.id, None)

    def container_logs(self, ref: str, tail: int = 50) -> list[str]:
        container = self._find(ref)
        return list(container.logs[-tail:]) if container else []

    def list_containers(self, labels: Mapping[str, str]) -> list[ObjectInfo]:
        self._record("list_containers")
        with self._lock:
            return [
                ObjectInfo("container", c.id, c.spec.name, dict(c.spec.labels))
                for c in self.containers.values()
                if all(c.spec.labels.get(k) == v for k, v in labels.items())
            ]
