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

This module is also the one authority on runtime *names*: perstack.toml's `runtime` (`sandbox.config`) and
`--runtime` (the CLI) are checked with `canonical_runtime`/`runtime_names`. Built-in names are data
(`BUILTIN_NAMES`, `ALIASES`), so validating a config imports no adapter; a plugin is known by its entry-point
name, which is read from the installed distributions' metadata without importing the plugin. Only a name
that is neither makes the registry load the plugins, for one that registered an id other than its
entry point's name.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sandbox._errors import UserError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from ._base import Runtime

__all__ = [
    "ALIASES",
    "BUILTIN_NAMES",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "HOOK",
    "Register",
    "RuntimeRegistry",
    "canonical_runtime",
    "plugin_names",
    "registry",
    "runtime_names",
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
BUILTIN_NAMES: tuple[str, ...] = (
    "perstack",
    "local",
    "docker",
    "cursor",
    "claude-code",
    "gemini",
    "codex",
    "opencode",
    "copilot",
)
"""The built-in runtimes' names, in Perstack's order: the ids `DEFAULT_PLUGINS` register (a test checks it)
plus `local`, Perstack's older name of `perstack`. Data, so that checking a name imports no adapter."""
ALIASES: Mapping[str, str] = {"local": "perstack", "copilot-cli": "copilot"}
"""Other names of a runtime id, accepted wherever a runtime is named."""

Register = Callable[["Runtime"], None]


def entry_points(group: str) -> Iterable[EntryPoint]:
    """The installed entry points of `group` (importlib.metadata loads only when plugins are asked about)."""
    from importlib.metadata import entry_points as installed

    return installed(group=group)


def _plugin_entry_points() -> list[EntryPoint]:
    """The `sandbox.runtimes` entry points that load, as `SANDBOX_LOAD_PLUGINS` selects them."""
    if hasattr(sys, "_called_from_test"):
        return []
    allowed = os.environ.get("SANDBOX_LOAD_PLUGINS")
    names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    return [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if names is None or ep.name in names]


def plugin_names() -> tuple[str, ...]:
    """The entry-point names of the plugins that load: the names their runtimes are run by (not imported)."""
    return tuple(dict.fromkeys(ep.name for ep in _plugin_entry_points()))


def runtime_names() -> tuple[str, ...]:
    """Every name a perstack.toml `runtime` or `--runtime` may give, built-ins first (for messages)."""
    return (*BUILTIN_NAMES, *(n for n in plugin_names() if n not in BUILTIN_NAMES))


def canonical_runtime(name: str) -> str | None:
    """The runtime id `name` selects (an alias resolved), or None when no runtime has that name."""
    if name in ALIASES:
        return ALIASES[name]
    if name in BUILTIN_NAMES:
        return name
    plugins = plugin_names()
    if name in plugins:
        return name
    # A plugin may register ids other than its entry point's name: only then is it worth importing them.
    if plugins and name in registry.ids():
        return name
    return None


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
            if self._use_entry_points:
                self._load_entry_points()

    def _load_entry_points(self) -> None:
        for ep in _plugin_entry_points():
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
        import difflib

        close = difflib.get_close_matches(runtime_id, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"unknown runtime {runtime_id!r} (known: {', '.join(known)}){hint}")


registry = RuntimeRegistry()
"""The process-wide registry the CLI uses."""
