"""The docker executor: build the sandbox's images, run an Expert in it, tear it down, clean up leftovers.

Public surface::

    run_in_docker(options, plan, emit, *, backend=None, settings=None) -> exit code
    SandboxSession(backend, name=...)   # what a sandbox created, and its one teardown (run, warm, audit)
    ensure_images(backend, rendered_context, plan, reporter=...) -> ImageSet     # `sandbox build`
    collect_leftovers(backend, ...) -> CleanReport                               # `sandbox clean`
    load_compose(path) -> ComposeProject                                         # compose.yaml -> specs

`ContainerBackend` is the seam to the engine: `DockerBackend` talks to a real one through the Docker SDK,
`FakeBackend` is an in-memory engine for tests. The Docker SDK (and `requests`, ~0.2 s to import) loads
only when `DockerBackend` is first touched, which a run does on a background thread while it renders.

Module map, in the order a run uses them: `_settings` (knobs, user, hidden paths), `_run` (one run: orders
the phases, decides the exit code), `_session` (what was created, and its teardown), `_stopper` (signals,
timeout, quota), `_claim` (a matching standby), `_sandbox` (render, images, networks, containers),
`_compose`, `_build`, `_progress`, `_pump` (events in), `_proxywatch` + `_proxylog_feed` (the proxy's
log), `_quota`, `_workspace_scan`, `_workspace_mount`. Around them: `_backend` (seam + specs), `_sdk` (SDK
+ the one error mapping), `_fake`, `_warm` + `_standby` (`sandbox warm`), `_signals`, `_labels`, `_gc`,
`_subnet`, `_lines`, `_user`, `_testkit` (docker test and benchmark helpers).
"""

from typing import TYPE_CHECKING, Any

from ._backend import (
    STDOUT,
    AttachedStream,
    BuildRequest,
    ContainerBackend,
    ContainerSpec,
    ContainerState,
    Mount,
    NetworkAttachment,
    NetworkExists,
    NetworkSpec,
    ObjectInfo,
    SubnetTaken,
)
from ._build import ImageSet, SkillsCache, ensure_images, format_skills
from ._compose import ComposeProject, load_compose, parse_compose
from ._fake import FakeBackend, FakeProcess, FakeProgram
from ._gc import CleanReport, collect_leftovers, make_run_dir
from ._labels import ROLE_LABEL, TOOL_LABEL, TOOL_NAME, run_labels
from ._progress import BuildReporter, ConsoleBuildReporter, EventBuildReporter, NullReporter, TeeReporter
from ._proxylog import ProxyAccess, is_proxy_ready_line, parse_proxy_log_line
from ._pump import EventPump
from ._run import expert_command, run_in_docker
from ._session import SandboxSession, create_network, ensure_shared_network
from ._settings import DockerSettings
from ._standby import READY_LINE, StandbyPool
from ._subnet import host_routes, pick_subnet
from ._user import UserChoice, resolve_user
from ._warm import plan_key, stop_pool, warm_pool
from ._workspace_mount import can_mount, nosuid_workspace, release_mounts
from ._workspace_scan import scan_workspace

if TYPE_CHECKING:
    from ._sdk import DockerBackend, map_docker_errors

__all__ = [
    "READY_LINE",
    "ROLE_LABEL",
    "STDOUT",
    "TOOL_LABEL",
    "TOOL_NAME",
    "AttachedStream",
    "BuildReporter",
    "BuildRequest",
    "CleanReport",
    "ComposeProject",
    "ConsoleBuildReporter",
    "ContainerBackend",
    "ContainerSpec",
    "ContainerState",
    "DockerBackend",
    "DockerSettings",
    "EventBuildReporter",
    "EventPump",
    "FakeBackend",
    "FakeProcess",
    "FakeProgram",
    "ImageSet",
    "Mount",
    "NetworkAttachment",
    "NetworkExists",
    "NetworkSpec",
    "NullReporter",
    "ObjectInfo",
    "ProxyAccess",
    "SandboxSession",
    "SkillsCache",
    "StandbyPool",
    "SubnetTaken",
    "TeeReporter",
    "UserChoice",
    "can_mount",
    "collect_leftovers",
    "create_network",
    "ensure_images",
    "ensure_shared_network",
    "expert_command",
    "format_skills",
    "host_routes",
    "is_proxy_ready_line",
    "load_compose",
    "make_run_dir",
    "map_docker_errors",
    "nosuid_workspace",
    "parse_compose",
    "parse_proxy_log_line",
    "pick_subnet",
    "plan_key",
    "release_mounts",
    "resolve_user",
    "run_in_docker",
    "run_labels",
    "scan_workspace",
    "stop_pool",
    "warm_pool",
]


def __getattr__(name: str) -> Any:
    """`DockerBackend` and `map_docker_errors` import the Docker SDK, so they load on first access."""
    if name in ("DockerBackend", "map_docker_errors"):
        from . import _sdk

        return getattr(_sdk, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
