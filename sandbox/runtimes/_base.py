"""The runtime contract: what every runtime is, and what a CLI adapter must implement.

Two layers, like llm's `Model`/`KeyModel`:

* `Runtime`: identity (`id`, `name`, `tier`), a probe (`info`) and `run(options, emit) -> exit code`.
  The native (`perstack`) and `docker` runtimes implement it by calling their engines.
* `CliRuntime`: a coding-agent CLI. A subclass declares its binary, install hint, auth variables and
  environment needs as class attributes, and implements two methods:

  - `build_invocation(request) -> Invocation`: argv, extra environment, files in a private scratch dir;
  - `parse(event, state) -> items`: one decoded JSON object of the CLI's stream into intermediate items.

  Everything else — discovery, auth checks, process control, turning items into Perstack events, storing
  checkpoints — is shared (`_run.py`), so an adapter is one small module with one class.

Discovery is lazy: nothing here touches PATH or spawns a process until `info()` or `run()` is called.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ._env import filter_env
from ._expert import ExpertMapping, SkillStatus
from ._process import ProcessResult, ProcessSpec, Spawner, spawn
from ._stream import Item, StreamState

if TYPE_CHECKING:
    from sandbox.events import EventBase
    from sandbox.options import RunOptions

__all__ = [
    "CliRequest",
    "CliRuntime",
    "Emit",
    "Invocation",
    "Runtime",
    "RuntimeInfo",
    "Tier",
]

Tier = Literal["native", "sdk", "cli"]
Emit = Callable[["EventBase"], None]

_VERSION_RE = re.compile(r"\d+(?:\.\d+)+(?:[-+.][0-9A-Za-z.-]+)?")


@dataclass(frozen=True)
class RuntimeInfo:
    """What `sandbox runtimes` shows for one runtime: the truth about this machine, probed on demand.

    `available` is True only when the runtime can run now: binary found *and* credentials present.
    `reason` says why not (the install hint, or the variable to set); `auth` names what supplies the
    credentials when found (a variable name or a credentials file), so the user can tell which is used.
    """

    id: str
    name: str
    tier: Tier
    available: bool
    version: str | None = None
    binary: str | None = None
    reason: str | None = None
    auth: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "tier": self.tier,
            "available": self.available,
            "version": self.version,
            "binary": self.binary,
            "reason": self.reason,
            "auth": self.auth,
        }


class Runtime(ABC):
    """A way to run an Expert. Subclasses set the three class attributes and implement `info`/`run`."""

    id: ClassVar[str]
    name: ClassVar[str]
    tier: ClassVar[Tier]

    @abstractmethod
    def info(self, env: Mapping[str, str]) -> RuntimeInfo:
        """Probe availability against `env` (the private env map; PATH and HOME come from it)."""

    @abstractmethod
    def run(self, options: RunOptions, emit: Emit) -> int:
        """Run `options.expert_key` once, emitting events as they happen; return the process exit code."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"


@dataclass(frozen=True)
class CliRequest:
    """Everything an adapter needs to build one invocation; built by `_run.py` from `RunOptions`.

    `scratch` is a private directory (mode 0700) deleted after the run: MCP config files, system-prompt
    files and settings go there, never into the user's workspace or home.
    """

    query: str
    expert: ExpertMapping
    model: str | None
    max_steps: int | None
    workspace: Path
    scratch: Path
    env: Mapping[str, str]
    flags: frozenset[str] = frozenset()
    """Which of the runtime's `optional_flags` the installed CLI lists in its `--help`."""


@dataclass
class Invocation:
    """How to start the CLI: arguments after the binary, environment additions, and the skill report."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    skills: list[SkillStatus] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Human-readable remarks for stderr (a dropped model name, an unsupported option)."""


class CliRuntime(Runtime):
    """A coding-agent CLI driven headlessly. See the module docstring for what a subclass provides.

    Class attributes:

    * `binary`: executable name looked up on PATH (override per runtime with `SANDBOX_<ID>_BIN`);
    * `install_hint`: the exact command that installs it;
    * `auth_env`: variables any one of which authenticates the CLI (checked before starting);
    * `auth_files`: credential files (relative to HOME) a stored login leaves behind;
    * `env_names` / `env_prefixes`: what else of the env map the CLI may see (besides `_env.BASE_ENV`);
    * `model_prefixes`: model names this CLI understands (None: any); others are not passed to it.
    """

    tier: ClassVar[Tier] = "cli"
    binary: ClassVar[str]
    install_hint: ClassVar[str]
    auth_env: ClassVar[tuple[str, ...]] = ()
    auth_files: ClassVar[tuple[str, ...]] = ()
    env_names: ClassVar[tuple[str, ...]] = ()
    env_prefixes: ClassVar[tuple[str, ...]] = ()
    model_prefixes: ClassVar[tuple[str, ...] | None] = None
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    optional_flags: ClassVar[tuple[str, ...]] = ()
    """Flags used only when the installed version has them (probed once per binary via `--help`)."""

    def __init__(self, spawner: Spawner | None = None) -> None:
        self._spawner = spawner
        self._versions: dict[tuple[str, float], str | None] = {}
        self._flags: dict[tuple[str, float], frozenset[str]] = {}

    # ------------------------------------------------------------------------------- what subclasses write

    @abstractmethod
    def build_invocation(self, request: CliRequest) -> Invocation:
        """Arguments and environment for one headless run (prompt, model, system prompt, stream output,
        non-interactive approval, MCP skills); write any config files under `request.scratch`."""

    @abstractmethod
    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        """Turn one JSON object of the CLI's stream into intermediate items, updating `state`.

        Must ignore unknown event types. Set `state.finished` on the CLI's terminal event and
        `state.error` when the CLI reports a failure (with the CLI's own message).
        """

    def finish(self, state: StreamState, result: ProcessResult) -> None:
        """Adjust `state` once the process has exited (default: nothing). For CLIs whose stream has no
        terminal event, or whose errors only show in the exit code."""

    # ------------------------------------------------------------------------------- shared behaviour

    @property
    def spawner(self) -> Spawner:
        return spawn if self._spawner is None else self._spawner

    @property
    def override_var(self) -> str:
        """`SANDBOX_CLAUDE_CODE_BIN` etc.: an explicit path that wins over PATH (used for stand-ins too)."""
        return "SANDBOX_" + self.id.upper().replace("-", "_") + "_BIN"

    def find_binary(self, env: Mapping[str, str]) -> str | None:
        override = env.get(self.override_var)
        if override:
            return override if os.access(override, os.X_OK) else None
        return shutil.which(self.binary, path=env.get("PATH", os.defpath))

    def find_auth(self, env: Mapping[str, str]) -> str | None:
        """The name of what authenticates this CLI (a variable or a credentials file), or None.

        A runtime that declares neither `auth_env` nor `auth_files` needs no credentials.
        """
        if not self.auth_env and not self.auth_files:
            return "not required"
        for name in self.auth_env:
            if env.get(name):
                return name
        home = env.get("HOME")
        for relative in self.auth_files:
            if home and (Path(home) / relative).is_file():
                return "~/" + relative
        return None

    def auth_hint(self) -> str:
        names = " or ".join(self.auth_env[:3]) if self.auth_env else "credentials"
        return f"set {names}"

    def version(self, binary: str, env: Mapping[str, str]) -> str | None:
        """`<binary> --version`, cached per binary path and mtime; None when the probe fails."""
        try:
            key = (binary, os.stat(binary).st_mtime)
        except OSError:
            return None
        if key not in self._versions:
            probe_env = filter_env(env, names=self.env_names)
            try:
                result = self.spawner(
                    ProcessSpec(argv=[binary, *self.version_args], env=probe_env, cwd=Path("/"), timeout=15)
                )
            except OSError:
                self._versions[key] = None
            else:
                match = _VERSION_RE.search(result.stdout + "\n" + result.stderr)
                self._versions[key] = match.group(0) if match and result.exit_code == 0 else None
        return self._versions[key]

    def supported_flags(self, binary: str, env: Mapping[str, str]) -> frozenset[str]:
        """The `optional_flags` this binary's `--help` mentions; CLIs change weekly, so probe, not assume."""
        if not self.optional_flags:
            return frozenset()
        try:
            key = (binary, os.stat(binary).st_mtime)
        except OSError:
            return frozenset()
        if key not in self._flags:
            probe_env = filter_env(env, names=self.env_names)
            try:
                result = self.spawner(
                    ProcessSpec(argv=[binary, "--help"], env=probe_env, cwd=Path("/"), timeout=15)
                )
                text = result.stdout + "\n" + result.stderr
            except OSError:
                text = ""
            words = set(re.findall(r"--[A-Za-z0-9][A-Za-z0-9-]*", text))
            self._flags[key] = frozenset(flag for flag in self.optional_flags if flag in words)
        return self._flags[key]

    def info(self, env: Mapping[str, str]) -> RuntimeInfo:
        binary = self.find_binary(env)
        if binary is None:
            return RuntimeInfo(
                self.id,
                self.name,
                self.tier,
                False,
                reason=f"`{self.binary}` not found on PATH; {self.install_hint}",
            )
        version = self.version(binary, env)
        auth = self.find_auth(env)
        reason = None if auth else f"no credentials: {self.auth_hint()}"
        return RuntimeInfo(self.id, self.name, self.tier, auth is not None, version, binary, reason, auth)

    def accepts_model(self, model: str) -> bool:
        return self.model_prefixes is None or model.lower().startswith(self.model_prefixes)

    def run(self, options: RunOptions, emit: Emit) -> int:
        from ._run import run_cli  # here, not at the top: _run imports this module (and the job store)

        return run_cli(self, options, emit)
