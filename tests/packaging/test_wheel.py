"""The templates ship inside the wheel: build it, install it in a fresh venv, render from elsewhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"


@pytest.mark.slow
@pytest.mark.network
def test_wheel_renders_from_another_directory(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [str(UV), "build", "--wheel", "--out-dir", str(dist), str(ROOT)], check=True, capture_output=True
    )
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for asset in (
        "sandbox/_assets/templates/Dockerfile.j2",
        "sandbox/_assets/compose/compose.yaml.j2",
        "sandbox/_assets/proxy/Dockerfile",
        "sandbox/_assets/proxy/squid.conf.j2",
    ):
        assert asset in names, asset

    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    subprocess.run(
        [str(UV), "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "perstack.toml").write_text(
        '[experts."e"]\ninstruction = "x"\n[experts."e".skills."t"]\ntype = "mcpStdioSkill"\n'
        'command = "uvx"\npackageName = "mcp-server-time"\n'
    )
    out = tmp_path / "ctx"
    proc = subprocess.run(
        [str(venv / "bin" / "sandbox"), "render", "e", "--out", str(out)],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mcp-server-time" in (out / "Dockerfile").read_text()
    assert (out / "proxy" / "config" / "squid.conf").is_file()
    # The installed package renders from its own _assets, not from this checkout.
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from sandbox._assets import asset_dir; print(asset_dir())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
    )
    assert str(venv) in probe.stdout
