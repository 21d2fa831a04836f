"""Runtimes: the native runtime, the docker sandbox, and coding-agent CLIs behind one interface.

Public surface (what the CLI calls):

* `list_runtimes(env=None) -> list[RuntimeInfo]`: every registered runtime, probed now (PATH, version,
  credentials); `sandbox runtimes` prints it.
* `get_runtime(id) -> Runtime`: by id or alias (`local` → `perstack`); `UserError` with a suggestion.
* `run_with_runtime(options, emit) -> int`: run `options.runtime` once, streaming Perstack events.
* `compare(options, runtime_ids, parallel=False) -> list[CompareRow]`: the same Expert on each runtime.

Writing a runtime: subclass `CliRuntime` in one module and expose `register_runtimes(register)`; see
docs/runtimes.md. Importing this package is cheap: adapters load on first use of the registry, and
nothing probes PATH until `list_runtimes()` or a run asks.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._registry import (
    BUILTIN_NAMES,
    ENTRY_POINT_GROUP,
    RuntimeRegistry,
    canonical_runtime,
    registry,
    runtime_names,
)

if TYPE_CHECKING:
    from sandbox.options import RunOptions

    from ._base import CliRequest, CliRuntime, Emit, Invocation, Runtime, RuntimeInfo, Tier
    from ._commands import compare_command, runtimes_command
    from ._compare import CompareRow, compare
    from ._expert import ExpertMapping, McpServer, SkillStatus
    from ._process import ProcessResult, ProcessSpec, Spawner, spawn
    from ._stream import Call, Item, Notice, RunUsage, StreamState, Text, ToolCalls, ToolResult

__all__ = [
    "BUILTIN_NAMES",
    "ENTRY_POINT_GROUP",
    "Call",
    "CliRequest",
    "CliRuntime",
    "CompareRow",
    "Emit",
    "ExpertMapping",
    "Invocation",
    "Item",
    "McpServer",
    "Notice",
    "ProcessResult",
    "ProcessSpec",
    "RunUsage",
    "Runtime",
    "RuntimeInfo",
    "RuntimeRegistry",
    "SkillStatus",
    "Spawner",
    "StreamState",
    "Text",
    "Tier",
    "ToolCalls",
    "ToolResult",
    "canonical_runtime",
    "compare",
    "compare_command",
    "get_runtime",
    "list_runtimes",
    "registry",
    "run_with_runtime",
    "runtime_names",
    "runtimes_command",
    "spawn",
]


# Where each lazily exported name lives. Why lazy: `sandbox.config` validates a `runtime` against the
# registry's names (`_registry.runtime_names`), and importing this package must not cost the adapters'
# base classes, the process supervisor and concurrent.futures for that (the container's start-up is measured).
_LAZY = {
    **dict.fromkeys(
        ("CliRequest", "CliRuntime", "Emit", "Invocation", "Runtime", "RuntimeInfo", "Tier"), "_base"
    ),
    **dict.fromkeys(("CompareRow", "compare"), "_compare"),
    **dict.fromkeys(("compare_command", "runtimes_command"), "_commands"),
    **dict.fromkeys(("ExpertMapping", "McpServer", "SkillStatus"), "_expert"),
    **dict.fromkeys(("ProcessResult", "ProcessSpec", "Spawner", "spawn"), "_process"),
    **dict.fromkeys(
        ("Call", "Item", "Notice", "RunUsage", "StreamState", "Text", "ToolCalls", "ToolResult"), "_stream"
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def get_runtime(runtime_id: str) -> Runtime:
    """The registered runtime with this id or alias; `UserError` (with "did you mean") when unknown."""
    return registry.get(runtime_id)


def list_runtimes(env: Mapping[str, str] | None = None) -> list[RuntimeInfo]:
    """Probe every runtime against `env` (default: the process environment), in registration order.

    Probes (`<cli> --version`) run concurrently: each Node-based CLI takes a noticeable fraction of a
    second to start, and `sandbox runtimes` should not cost their sum.
    """
    from concurrent.futures import ThreadPoolExecutor

    source = os.environ if env is None else env
    runtimes = registry.all()
    with ThreadPoolExecutor(max_workers=max(1, len(runtimes))) as pool:
        return list(pool.map(lambda runtime: runtime.info(source), runtimes))


def run_with_runtime(options: RunOptions, emit: Emit) -> int:
    """Run `options.expert_key` on `options.runtime`, emitting events; returns the exit code.

    Raises `AdapterError` (exit 1, one line) for a missing binary (with the install hint) or missing
    credentials (naming the variable), before any event; later failures are `stopRunByError` events.
    """
    return get_runtime(options.runtime).run(options, emit)
