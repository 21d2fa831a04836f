"""The native runtime (`perstack`, alias `local`): this package's own agent loop, in-process.

Registered here so `sandbox runtimes` and `sandbox compare` see it next to the CLI adapters; running it is
the native runtime's job (`sandbox.agent.run_native`), imported only when a run starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from sandbox._version import __version__

from ._base import Emit, Runtime, RuntimeInfo, Tier

if TYPE_CHECKING:
    from sandbox.options import RunOptions

__all__ = ["Perstack", "register_runtimes"]


class Perstack(Runtime):
    """Perstack's run loop reimplemented in Python; always available (model credentials are checked
    when a run starts, against the provider the Expert uses)."""

    id: ClassVar[str] = "perstack"
    name: ClassVar[str] = "Perstack (native)"
    tier: ClassVar[Tier] = "native"

    def info(self, env: Mapping[str, str]) -> RuntimeInfo:
        return RuntimeInfo(self.id, self.name, self.tier, True, version=__version__)

    def run(self, options: RunOptions, emit: Emit) -> int:
        # Imported at run time: the native runtime pulls in pydantic-ai and the MCP SDK.
        run_native = importlib.import_module("sandbox.agent").run_native

        code: int = run_native(options, emit)
        return code


def register_runtimes(register: Any) -> None:
    register(Perstack())
