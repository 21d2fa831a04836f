"""The image's skill lock: how `npx`/`uvx` skills map to installed executables inside the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import skills_lock
from sandbox.config import McpStdioSkill
from sandbox.skills_lock import InstalledPackage, SkillsLock, installed_command, load_lock, split_spec

LOCK = SkillsLock(
    npm={
        "@modelcontextprotocol/server-everything": InstalledPackage(
            "@modelcontextprotocol/server-everything",
            "2026.8.31",
            {"mcp-server-everything": "/usr/local/bin/mcp-server-everything"},
        )
    },
    pypi={
        "mcp-server-time": InstalledPackage(
            "mcp-server-time", "2026.10.19", {"mcp-server-time": "/usr/local/bin/mcp-server-time"}
        )
    },
)


def _skill(command: str, package: str | None, args: list[str] | None) -> McpStdioSkill:
    fields: dict[str, object] = {"type": "mcpStdioSkill", "command": command}
    if package is not None:
        fields["packageName"] = package
    if args is not None:
        fields["args"] = args
    return McpStdioSkill.model_validate(fields)


@pytest.fixture
def image_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    path = tmp_path / "skills.lock.json"
    path.write_text(LOCK.to_json())
    monkeypatch.setenv("SANDBOX_SKILLS_LOCK", str(path))
    skills_lock._image_lock.cache_clear()
    yield
    skills_lock._image_lock.cache_clear()


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(LOCK.to_json())
    assert load_lock(path) == LOCK


@pytest.mark.parametrize(
    ("spec", "eco", "name"),
    [
        ("@s/n@1.2.3", "npm", "@s/n"),
        ("@s/n", "npm", "@s/n"),
        ("pkg@latest", "npm", "pkg"),
        ("mcp-server-time==1.0", "pypi", "mcp-server-time"),
        ("x@2", "pypi", "x"),
    ],
)
def test_split_spec(spec: str, eco: str, name: str) -> None:
    assert split_spec(spec, eco) == name


@pytest.mark.usefixtures("image_lock")
@pytest.mark.parametrize(
    ("command", "package", "args", "expected"),
    [
        (
            "npx",
            "@modelcontextprotocol/server-everything",
            None,
            ("/usr/local/bin/mcp-server-everything", []),
        ),
        (
            "npx",
            None,
            ["-y", "@modelcontextprotocol/server-everything@2026.8.31", "stdio"],
            ("/usr/local/bin/mcp-server-everything", ["stdio"]),
        ),
        ("uvx", "mcp-server-time", None, ("/usr/local/bin/mcp-server-time", [])),
        (
            "uvx",
            None,
            ["mcp-server-time", "--local-timezone", "UTC"],
            ("/usr/local/bin/mcp-server-time", ["--local-timezone", "UTC"]),
        ),
        (
            "uvx",
            None,
            ["--from", "mcp-server-time", "mcp-server-time", "--x"],
            ("/usr/local/bin/mcp-server-time", ["--x"]),
        ),
        ("npx", "not-installed", None, None),
        ("node", None, ["server.js"], None),
    ],
)
def test_installed_command(
    command: str, package: str | None, args: list[str] | None, expected: tuple[str, list[str]] | None
) -> None:
    assert installed_command(_skill(command, package, args)) == expected


def test_outside_an_image_nothing_is_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_SKILLS_LOCK", raising=False)
    skills_lock._image_lock.cache_clear()
    assert installed_command(_skill("npx", "@modelcontextprotocol/server-everything", None)) is None
