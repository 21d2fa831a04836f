"""Shared helpers for the runtime adapter tests: configs, options, recorded streams, stand-in CLIs."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import parse_config_text
from sandbox.events import EventBase, InitializeRuntime
from sandbox.options import RunOptions
from sandbox.runtimes import CliRuntime, ProcessResult, StreamState
from sandbox.runtimes._stream import Item, decode_line

HERE = Path(__file__).parent
STREAMS = HERE.parent / "fixtures" / "streams"
FAKE_CLI = HERE / "fake_cli.py"
REPO = HERE.parent.parent

CONFIG = """
model = "claude-sonnet-4-5"

[experts."writer"]
description = "Writes small files"
instruction = "You write files. MARKER-7Q"
delegates = ["reviewer", "@org/linter"]

[experts."writer".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"

[experts."writer".skills."time"]
type = "mcpStdioSkill"
description = "Current time"
command = "uvx"
packageName = "mcp-server-time"
pick = ["get_current_time"]

[experts."writer".skills."search"]
type = "mcpSseSkill"
endpoint = "https://search.example.com/sse"
omit = ["admin"]

[experts."writer".skills."ask"]
type = "interactiveSkill"
[experts."writer".skills."ask".tools."askUser"]
description = "Ask the user"
inputJsonSchema = '{"type":"object","properties":{"q":{"type":"string"}}}'

[experts."reviewer"]
description = "Reviews changes"
instruction = "Review every change carefully."

[experts."plain"]
instruction = "Answer briefly. MARKER-7Q"
"""


def stream_path(runtime: str, name: str) -> Path:
    return STREAMS / runtime / name


def parse_stream(
    runtime: CliRuntime, path: Path, *, exit_code: int = 0, stderr: str = "", servers: tuple[str, ...] = ()
) -> tuple[list[Item], StreamState]:
    """Feed a recorded stream through `runtime.parse` line by line, then `finish`, like a run does."""
    state = StreamState(servers=servers)
    items: list[Item] = []
    for line in path.read_text().splitlines():
        for obj in decode_line(line):
            items.extend(runtime.parse(obj, state))
    runtime.finish(state, ProcessResult(exit_code=exit_code, stderr=stderr))
    return items, state


def load_config(text: str = CONFIG) -> Any:
    config, _warnings = parse_config_text(text, "perstack.toml")
    return config


def make_options(
    tmp_path: Path, *, runtime: str, env: dict[str, str], expert: str = "plain", **extra: Any
) -> RunOptions:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "config": load_config(),
        "config_path": tmp_path / "perstack.toml",
        "expert_key": expert,
        "query": "create hello.txt",
        "runtime": runtime,
        "env": env,
        "workspace": workspace,
        "jobs_dir": tmp_path / "perstack" / "jobs",
    }
    values.update(extra)
    return RunOptions(**values)


@dataclass
class FakeCli:
    """A stand-in binary on a private PATH directory, configured by a behaviour JSON file."""

    bin_dir: Path
    name: str
    behaviour_file: Path
    record_file: Path
    behaviour: dict[str, Any] = field(default_factory=dict)

    def configure(self, **behaviour: Any) -> None:
        self.behaviour = {"record": str(self.record_file), **behaviour}
        self.behaviour_file.write_text(json.dumps(self.behaviour))

    @property
    def recorded(self) -> dict[str, Any]:
        return json.loads(self.record_file.read_text())  # type: ignore[no-any-return]

    def env(self, **extra: str) -> dict[str, str]:
        """A private env map with this stand-in first on PATH and HOME in the test dir."""
        return {
            "PATH": f"{self.bin_dir}:/usr/bin:/bin",
            "HOME": str(self.bin_dir.parent / "home"),
            **extra,
        }


@pytest.fixture
def fake_cli(tmp_path: Path) -> Callable[[str], FakeCli]:
    """`fake_cli("cursor-agent")` → a stand-in executable named like the real CLI."""

    def make(name: str) -> FakeCli:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        (tmp_path / "home").mkdir(exist_ok=True)
        behaviour = tmp_path / f"{name}.behaviour.json"
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_CLI}" "{behaviour}" "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        cli = FakeCli(bin_dir, name, behaviour, tmp_path / f"{name}.record.json")
        cli.configure()
        return cli

    return make


@dataclass
class Collected:
    """An `emit` that keeps events, for assertions on the normalized stream."""

    events: list[EventBase] = field(default_factory=list)

    def __call__(self, event: EventBase) -> None:
        self.events.append(event)

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    def init(self) -> InitializeRuntime:
        """The first event, which every runtime's stream starts with."""
        first = self.events[0]
        assert isinstance(first, InitializeRuntime), first.type
        return first


@pytest.fixture
def collected() -> Collected:
    return Collected()


@pytest.fixture
def notes() -> Iterator[list[str]]:
    yield []


def cli_bin_dir() -> Path:
    """Where CI installs the real CLIs (`npm install --prefix .cache/clis ...`); override with
    SANDBOX_TEST_CLI_BIN."""
    return Path(os.environ.get("SANDBOX_TEST_CLI_BIN", REPO / ".cache" / "clis" / "node_modules" / ".bin"))
