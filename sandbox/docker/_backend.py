"""The seam between the executor and Docker: a small protocol, plain data in, plain data out.

Why a seam (httpx's transports): the executor's logic (build skipping, teardown on every path, signal
handling, event pumping, garbage collection) is where the bugs live, and it must be testable without a
Docker engine. So everything the executor asks of Docker goes through `ContainerBackend`, whose arguments are
the frozen specs below, translated from compose.yaml by `_compose`. `DockerBackend` (`_sdk.py`) implements it
with the Docker SDK; `FakeBackend` (`_fake.py`) implements it in memory for unit tests.

Contract for implementations:

* Every failure is a `DockerError` (or subclass) with a fix hint, raised from one mapping place; an SDK or
  transport exception never escapes.
* Removal methods are idempotent: removing something already gone is not an error (teardown races with
  auto-removal, garbage collection and signals).
* Methods may be called from several threads at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from sandbox._errors import RunError

__all__ = [
    "STDERR",
    "STDOUT",
    "AttachedStream",
    "BuildRequest",
    "ContainerBackend",
    "ContainerSpec",
    "ContainerState",
    "Mount",
    "NetworkAttachment",
    "NetworkExists",
    "NetworkSpec",
    "ObjectInfo",
    "SubnetTaken",
]

STDOUT = 1
STDERR = 2


class NetworkExists(RunError):  # noqa: N818 - reads as the condition the caller accepts
    """A network of that name exists already (the shared egress network another run created)."""


class SubnetTaken(RunError):  # noqa: N818 - reads as the condition the caller retries on
    """The requested subnet overlaps an existing network (another run took it first): pick another."""


@dataclass(frozen=True)
class NetworkSpec:
    """One network. `name` is the engine-level name (compose's `<project>_<key>`)."""

    name: str
    internal: bool = False
    subnet: str | None = None
    ip_range: str | None = None
    enable_ipv6: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)  # bridge driver options
    # Compose's `external: true`: shared by every sandbox, created when missing, never removed by a run.
    external: bool = False


@dataclass(frozen=True)
class Mount:
    """A bind mount: host `source` at container `target`."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class NetworkAttachment:
    """A container's endpoint on one network (engine-level network name)."""

    network: str
    ipv4_address: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    """One container, as compose would create it for one service. `command` follows the image ENTRYPOINT."""

    name: str
    service: str
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = False
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    dns: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    mem_limit: str | None = None
    memswap_limit: str | None = None
    nano_cpus: int | None = None
    pids_limit: int | None = None
    ulimits: Mapping[str, int] = field(default_factory=dict)  # name -> soft = hard limit (`fsize`: bytes)
    init: bool = False
    stdin_open: bool = False
    # True: the engine closes the container's stdin when the first attached client detaches (a run's one
    # payload, then EOF). False keeps it open across attaches: a standby is attached to later by its run.
    stdin_once: bool = True
    networks: tuple[NetworkAttachment, ...] = ()
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildRequest:
    """One legacy-builder build: an uncompressed tar of the context, the tag, build args and labels."""

    tag: str
    context_tar: bytes
    service: str
    dockerfile: str = "Dockerfile"
    buildargs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    """A labelled object found by a listing (container, network or image)."""

    kind: Literal["container", "network", "image"]
    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerState:
    """What `inspect` says about a container that matters to the executor."""

    running: bool
    exit_code: int | None = None
    oom_killed: bool = False
    error: str | None = None


@runtime_checkable
class AttachedStream(Protocol):
    """A container's stdin/stdout/stderr, attached before it starts so no output is lost.

    `frames()` yields `(STDOUT|STDERR, bytes)` chunks until the container closes its output (exits), or
    until `close()` is called from another thread.
    """

    def send(self, data: bytes) -> None:
        """Write to the container's stdin."""

    def close_stdin(self) -> None:
        """Half-close: the container reads EOF on stdin; output keeps flowing."""

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Output chunks, in order, tagged with their stream."""

    def close(self) -> None:
        """Drop the connection (unblocks a reader in `frames()`)."""


@runtime_checkable
class ContainerBackend(Protocol):
    """Everything the executor asks of a container engine. See the module docstring for the contract."""

    def ping(self) -> None:
        """Raise a DockerError with a fix hint unless the engine answers."""

    # images
    def image_exists(self, ref: str) -> bool:
        """True if `ref` (name:tag or id) is present locally. Never pulls."""

    def build(self, request: BuildRequest) -> Iterator[dict[str, Any]]:
        """Run one build, yielding the legacy builder's decoded JSON messages (`stream`, `error`, `aux`).

        A failing instruction arrives as an `error` message, not an exception; the caller interprets it.
        """

    def read_file_from_image(self, image: str, path: str) -> bytes | None:
        """The contents of one regular file of `image`, without running anything; None if absent."""

    def list_images(self, labels: Mapping[str, str]) -> list[ObjectInfo]:
        """Images carrying every one of `labels`."""

    def remove_image(self, ref: str) -> None:
        """Remove an image (forcefully; idempotent)."""

    # networks
    def create_network(self, spec: NetworkSpec) -> str:
        """Create a network and return its id. Raises `SubnetTaken` when the subnet overlaps another and
        `NetworkExists` when the name is taken."""

    def remove_network(self, ref: str) -> None:
        """Remove a network (idempotent)."""

    def list_networks(self, labels: Mapping[str, str]) -> list[ObjectInfo]:
        """Networks carrying every one of `labels`."""

    def used_subnets(self) -> list[str]:
        """Every IPv4 subnet of every network on the engine (to pick a free one)."""

    # containers
    def create_container(self, spec: ContainerSpec) -> str:
        """Create (not start) a container attached to all of `spec.networks`; returns its id."""

    def attach(self, ref: str, *, stdin: bool, logs: bool = False) -> AttachedStream:
        """Attach to a container's streams; `logs=True` also replays what it printed so far."""

    def start_container(self, ref: str) -> None:
        """Start a created container."""

    def wait_container(self, ref: str, timeout: float | None = None) -> int:
        """Block until the container stops; its exit code."""

    def container_state(self, ref: str) -> ContainerState | None:
        """The container's state, or None if it no longer exists."""

    def kill_container(self, ref: str, signal: str = "SIGKILL") -> None:
        """Send `signal` to a running container (idempotent; a stopped or missing container is fine)."""

    def remove_container(self, ref: str) -> None:
        """Kill and remove a container with its anonymous volumes (idempotent)."""

    def container_logs(self, ref: str, tail: int = 50) -> list[str]:
        """The last `tail` lines a container printed (stdout and stderr), for error messages."""

    def list_containers(self, labels: Mapping[str, str]) -> list[ObjectInfo]:
        """Containers (running or not) carrying every one of `labels`."""

    def close(self) -> None:
        """Release connections."""
