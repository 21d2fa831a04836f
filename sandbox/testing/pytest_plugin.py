"""pytest plugin: the `llm_server` fixture, a factory of started `ScriptedLLMServer`s.

Enable it in a root `conftest.py` with ``pytest_plugins = ["sandbox.testing.pytest_plugin"]``::

    def test_agent_reads_file(llm_server):
        srv = llm_server([Turn(tool_calls=[ToolCall("read_file", {"path": "a"})]), Turn("done")])
        run_agent(base_url=srv.base_url)
        assert srv.requests[1].tool_results == ("contents of a",)

Every server is stopped at teardown. If the test itself passed, teardown also calls
`assert_all_served()` (unless the server was made with `check=False`), so a turn the agent never
asked for, or a request the script did not allow, fails the test even when the test forgot to look;
after a failed test that check is skipped, so the report shows the first failure, not a second one.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence

import pytest

from ._app import DEFAULT_MODELS
from ._script import Script, Turn
from ._server import ScriptedLLMServer
from ._wire import DEFAULT_CHUNK_SIZE

__all__ = ["LLMServerFactory", "llm_server", "pytest_runtest_makereport"]

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


class LLMServerFactory:
    """What the `llm_server` fixture returns: call it to get a started server."""

    def __init__(self) -> None:
        self._servers: list[tuple[ScriptedLLMServer, bool]] = []

    def __call__(
        self,
        script: Script | Iterable[Turn] = (),
        *,
        check: bool = True,
        tls: bool = False,
        hostnames: Sequence[str] = ("localhost", "127.0.0.1"),
        require_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        control_api: bool = False,
    ) -> ScriptedLLMServer:
        """Start a `ScriptedLLMServer` (same keywords); `check=False` skips the teardown check."""
        server = ScriptedLLMServer(
            script,
            tls=tls,
            hostnames=hostnames,
            require_key=require_key,
            models=models,
            chunk_size=chunk_size,
            control_api=control_api,
        ).start()
        self._servers.append((server, check))
        return server

    def close(self, *, check: bool) -> None:
        """Stop every server, then (if `check`) raise for the first that was not fully served."""
        for server, _ in self._servers:
            server.stop()
        if check:
            for server, wanted in self._servers:
                if wanted:
                    server.assert_all_served()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember the call-phase report so the fixture knows at teardown whether the test passed."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture
def llm_server(request: pytest.FixtureRequest) -> Generator[LLMServerFactory, None, None]:
    """A factory of started scripted LLM servers, stopped (and checked) at teardown."""
    factory = LLMServerFactory()
    yield factory
    report = request.node.stash.get(_CALL_REPORT, None)
    factory.close(check=report is not None and report.passed)
