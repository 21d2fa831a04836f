"""Every real-world Perstack config in shared/peer-configs must load (with warnings at most)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.config import InteractiveSkill, McpStdioSkill, load_config, package_spec

# A copy of shared/peer-configs (Apache-2.0, see NOTICE.md there), so the suite runs from any clone.
PEER_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "peer-configs"
PEERS = sorted(PEER_DIR.glob("*.toml"))


def test_peer_configs_are_present() -> None:
    assert len(PEERS) >= 28, PEER_DIR


@pytest.mark.parametrize("path", PEERS, ids=[p.name for p in PEERS])
def test_peer_config_loads(path: Path) -> None:
    loaded = load_config(path)
    assert loaded.config.experts
    assert all(w.severity == "warning" for w in loaded.warnings)
    for expert in loaded.config.experts.values():
        for skill in (expert.skills or {}).values():
            if isinstance(skill, McpStdioSkill) and skill.command in {"npx", "uvx"}:
                spec = package_spec(skill)
                assert spec is not None, (path.name, skill)
                assert spec.ecosystem == "npm"


def test_known_peer_quirks_are_warnings() -> None:
    loaded = load_config(PEER_DIR / "e2e_experts_error-handling.toml")
    assert [w.path for w in loaded.warnings] == [
        "provider.envPath",
        'experts."e2e-invalid-delegate".delegates[0]',
    ]
    skills = load_config(PEER_DIR / "e2e_experts_mixed-tools.toml").config.experts["e2e-mixed-tools"].skills
    assert skills is not None
    interactive = skills["user-input"]
    assert isinstance(interactive, InteractiveSkill)
    assert interactive.tools["askUser"].name == "askUser"  # the redundant `name` key these configs carry
