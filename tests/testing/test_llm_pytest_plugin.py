"""The plugin as another test area would use it: `pytest_plugins` in a root conftest, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CONFTEST = 'pytest_plugins = ["sandbox.testing.pytest_plugin"]\n'
TESTS = textwrap.dedent(
    """
    import anthropic
    from sandbox.testing import Turn

    HELLO = [{"role": "user", "content": "hi"}]

    def ask(srv):
        c = anthropic.Anthropic(base_url=srv.base_url, api_key="k", max_retries=0)
        return c.messages.create(model="m", max_tokens=8, messages=HELLO).content[0].text

    def test_served(llm_server):
        assert ask(llm_server([Turn("hi back")])) == "hi back"

    def test_leaves_a_turn_unserved(llm_server):
        srv = llm_server([Turn("one"), Turn("never asked for", label="forgotten")])
        assert ask(srv) == "one"

    def test_unchecked(llm_server):
        llm_server([Turn("unused")], check=False)

    def test_fails_itself(llm_server):
        llm_server([Turn("unused")])
        assert False, "the test's own failure"
    """
)


def test_fixture_via_pytest_plugins(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_uses_plugin.py").write_text(TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    out = result.stdout
    assert "PASSED test_uses_plugin.py::test_served" in out, out
    assert "PASSED test_uses_plugin.py::test_unchecked" in out, out
    # The teardown check turns an unserved turn into an error of the otherwise passing test...
    assert "ERROR test_uses_plugin.py::test_leaves_a_turn_unserved" in out, out
    assert "turn 1 ('forgotten') was never served" in out, out
    # ...but does not pile onto a test that already failed.
    assert "FAILED test_uses_plugin.py::test_fails_itself" in out, out
    assert "ERROR test_uses_plugin.py::test_fails_itself" not in out, out
    assert result.returncode == 1
