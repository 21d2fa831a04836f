"""The runtime registry: built-ins and third-party plugins, registered through the same hook.

The shape is llm's plugin system without pluggy: a plugin is a module with a function

    def register_runtimes(register): register(MyRuntime())

Built-ins are listed in `DEFAULT_PLUGINS` and loaded exactly like third-party modules found through the
`sandbox.runtimes` entry-point group::

    [project.entry-points."sandbox.runtimes"]
    my-cli = "my_package.my_cli"

Loading is lazy (first `get`/`all`), so importing `sandbox` or running `sandbox --help` neither imports
adapters nor touches PATH. `SANDBOX_LOAD_PLUGINS` (comma-separated entry-point names, empty for none)
limits which third-party plugins load, like `LLM_LOAD_PLUGINS`.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from sandbox._errors import UserError

from ._base import Runtime

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "HOOK",
    "Register",
    "RuntimeRegistry",
    "registry",
]

ENTRY_POINT_GROUP = "sandbox.runtimes"
HOOK = "register_runtimes"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sandbox.runtimes.perstack",
    "sandbox.runtimes.docker",
    "sandbox.runtimes.claude_code",
    "sandbox.runtimes.cursor",
    "sandbox.runtimes.gemini",
    "sandbox.runtimes.codex",
    "sandbox.runtimes.opencode",
    "sandbox.runtimes.copilot",
)
ALIASES = {"local": "perstack", "copilot-cli": "copilot"}

Register = Callable[[Runtime], None]


class RuntimeRegistry:
    """Runtimes by id, in registration order. Thread-safe; loads plugins once, on first use."""

    def __init__(self, plugins: Iterable[str] = DEFAULT_PLUGINS, *, entry_points: bool = True) -> None:
        self._plugins = tuple(plugins)
        self._use_entry_points = entry_points
        self._runtimes: dict[str, Runtime] = {}
        self._loaded = False
        self._lock = threading.RLock()
        self.errors: list[str] = []
        """Plugins that failed to load, one message each (shown by `sandbox runtimes`)."""

    def register(self, runtime: Runtime) -> None:
        """Add a runtime. A later registration with the same id replaces the earlier one, so a plugin
        can override a built-in adapter (e.g. a patched Codex adapter) without forking sandbox."""
        if not getattr(runtime, "id", None):
            raise TypeError(f"{runtime!r} has no id")
        with self._lock:
            self._runtimes[runtime.id] = runtime

    def unregister(self, runtime_id: str) -> None:
        with self._lock:
            self._runtimes.pop(runtime_id, None)

    def load_module(self, module: ModuleType | str) -> None:
        """Call a plugin module's `register_runtimes(register)`."""
        mod = importlib.import_module(module) if isinstance(module, str) else module
        hook: Any = getattr(mod, HOOK, None)
        if not callable(hook):
            raise TypeError(f"plugin {mod.__name__} has no {HOOK}(register) function")
        hook(self.register)

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            for name in self._plugins:
                self.load_module(name)
            if self._use_entry_points and not hasattr(sys, "_called_from_test"):
                self._load_entry_points()

    def _load_entry_points(self) -> None:
        allowed = os.environ.get("SANDBOX_LOAD_PLUGINS")
        names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if names is not None and ep.name not in names:
                continue
            try:
                loaded = ep.load()
                if isinstance(loaded, ModuleType):
                    self.load_module(loaded)
                else:
                    loaded(self.register)
            except Exception as exc:  # a broken plugin must not break every command
                self.errors.append(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}")

    def all(self) -> list[Runtime]:
        self._load()
        with self._lock:
            return list(self._runtimes.values())

    def ids(self) -> list[str]:
        return [r.id for r in self.all()]

    def get(self, runtime_id: str) -> Runtime:
        """The runtime with this id (or alias); `UserError` with a suggestion when unknown."""
        self._load()
        key = ALIASES.get(runtime_id, runtime_id)
        with self._lock:
            found = self._runtimes.get(key)
            if found is not None:
                return found
            known = list(self._runtimes)
        close = difflib.get_close_matches(runtime_id, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"unknown runtime {runtime_id!r} (known: {', '.join(known)}){hint}")


registry = RuntimeRegistry()
"""The process-wide registry the CLI uses."""
