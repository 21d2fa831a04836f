"""The docker executor: build the sandbox's images, run an Expert in it, tear it down, clean up leftovers.

Public surface::

    run_in_docker(options, plan, emit, *, backend=None, settings=None) -> exit code
    ensure_images(backend, rendered_context, plan, reporter=...) -> ImageSet     # `sandbox build`
    collect_leftovers(backend, ...) -> CleanReport                               # `sandbox clean`
    load_compose(path) -> ComposeProject                                         # compose.yaml -> specs

`ContainerBackend` is the seam to the engine: `DockerBackend` talks to a real one through the Docker SDK,
`FakeBackend` is an in-memory engine for tests. Nothing here imports the Docker SDK until a `DockerBackend`
makes its first request. Module map: `_backend` (seam + specs), `_sdk` (SDK + the one error mapping),
`_fake`, `_compose`, `_build`, `_progress`, `_run`, `_pump`, `_lines`, `_proxylog_feed`, `_signals`,
`_labels`, `_gc`, `_subnet`.
"""

from ._backend import (
    AttachedStream,
    BuildRequest,
    ContainerBackend,
    ContainerSpec,
    ContainerState,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    ObjectInfo,
    SubnetTaken,
)
from ._build import ImageSet, SkillsCache, ensure_images, format_skills
from ._compose import ComposeProject, load_compose, parse_compose
from ._fake import FakeBackend, FakeProcess, FakeProgram
from ._gc import CleanReport, collect_leftovers
from ._labels import TOOL_LABEL, TOOL_NAME
from ._progress import BuildReporter, ConsoleBuildReporter, EventBuildReporter, NullReporter, TeeReporter
from ._run import DockerSettings, container_args, run_in_docker, secret_values
from ._sdk import DockerBackend, map_docker_errors

__all__ = [
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
    "FakeBackend",
    "FakeProcess",
    "FakeProgram",
    "ImageSet",
    "Mount",
    "NetworkAttachment",
    "NetworkSpec",
    "NullReporter",
    "ObjectInfo",
    "SkillsCache",
    "SubnetTaken",
    "TeeReporter",
    "collect_leftovers",
    "container_args",
    "ensure_images",
    "format_skills",
    "load_compose",
    "map_docker_errors",
    "parse_compose",
    "run_in_docker",
    "secret_values",
]
