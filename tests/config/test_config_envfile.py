"""Env files: a private merged map, later files win, bad names skipped with warnings, os.environ untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox._errors import ConfigError, ConfigIssue
from sandbox.config import load_env_files


def test_later_files_override_and_missing_files_are_fine(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\nB=from-env\nexport C='quoted value'\n", encoding="utf-8")
    (tmp_path / ".env.local").write_text("B=from-local\n", encoding="utf-8")
    env = load_env_files([".env", "missing.env", ".env.local"], tmp_path)
    assert env == {"A": "1", "B": "from-local", "C": "quoted value"}


def test_absolute_paths_and_no_interpolation_from_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_TEST_HOST_SECRET", "host-value")
    file = tmp_path / "abs.env"
    file.write_text("X=${SANDBOX_TEST_HOST_SECRET}\nTEST_NEW=1\n", encoding="utf-8")
    env = load_env_files([str(file)], Path("/nonexistent-base"))
    assert env == {"X": "${SANDBOX_TEST_HOST_SECRET}", "TEST_NEW": "1"}
    assert "TEST_NEW" not in os.environ


def test_bad_names_are_skipped_with_warnings(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GOOD=1\nBAD-NAME=2\n1X=3\nNOVALUE\n", encoding="utf-8")
    warnings: list[ConfigIssue] = []
    env = load_env_files([".env"], tmp_path, warnings=warnings)
    assert env == {"GOOD": "1"}
    label = str(tmp_path / ".env")
    assert [str(w) for w in warnings] == [
        f"{label}: `BAD-NAME`: skipped: not a valid environment variable name",
        f"{label}: `1X`: skipped: not a valid environment variable name",
    ]
    assert all(w.severity == "warning" for w in warnings)


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_bytes(b"A=\xff\xfe\n")
    (tmp_path / "dir.env").mkdir()
    with pytest.raises(ConfigError) as info:
        load_env_files(["bad.env", "dir.env"], tmp_path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'bad.env'}: cannot be read: ")
    assert lines[1] == f"{tmp_path / 'dir.env'}: is not a regular file"


def test_variables_that_steer_the_host_are_never_taken_from_an_env_file(tmp_path: Path) -> None:
    """The red-team's `.env.local` with DOCKER_HOST sent the next run's stdin (the key) to another engine."""
    (tmp_path / ".env.local").write_text(
        "ANTHROPIC_API_KEY=sk-kept\nDOCKER_HOST=tcp://203.0.113.9:2375\nDOCKER_CONFIG=/tmp/x\n"
        "SANDBOX_USER=0:0\nXDG_CACHE_HOME=/tmp/c\nHOME=/tmp/h\nPATH=/tmp/bin\nhttps_proxy=http://evil\n"
        "LD_PRELOAD=/tmp/x.so\nPYTHONPATH=/tmp\nNODE_OPTIONS=--require=/tmp/x\nGIT_DIR=/tmp/g\n"
        "SSL_CERT_FILE=/tmp/ca\nCOMPOSE_FILE=/tmp/c.yaml\nOPENAI_BASE_URL=https://api.example.test\n",
        encoding="utf-8",
    )
    warnings: list[ConfigIssue] = []
    env = load_env_files([".env.local"], tmp_path, warnings=warnings)
    # Control: provider settings and keys still come from env files, as in Perstack.
    assert env == {"ANTHROPIC_API_KEY": "sk-kept", "OPENAI_BASE_URL": "https://api.example.test"}
    skipped = [w.path for w in warnings]
    assert len(skipped) == 13
    assert all("configures the host tool itself" in w.message for w in warnings)
