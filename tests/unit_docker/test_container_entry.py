"""The container side of the contract: arguments without secrets, the proxy wait, the deadline flag."""

from __future__ import annotations

import socket
import threading
import time

from sandbox.cli._container import _parser, wait_for_proxy
from sandbox.docker import container_args

from .conftest import SECRET, Env


def test_container_args_round_trip_through_the_container_parser(world: Env) -> None:
    options = world.options(
        query="what time is it?",
        provider="anthropic",
        model="claude-x",
        temperature=0.5,
        reasoning_budget="high",
        max_steps=7,
        max_retries=2,
        timeout_ms=9000,
        verbose=True,
        interactive_result='{"toolCallId": "t"}',
    )
    argv = container_args(options, "job123", deadline=1234.5)
    parsed = _parser().parse_args(argv)
    assert (parsed.expert, parsed.query, parsed.job_id) == ("coord", "what time is it?", "job123")
    assert (parsed.provider, parsed.model, parsed.temperature) == ("anthropic", "claude-x", 0.5)
    assert (parsed.max_steps, parsed.max_retries, parsed.timeout, parsed.deadline) == (7, 2, 9000, 1234.0)
    assert (
        parsed.reasoning_budget == "high" and parsed.verbose and parsed.interactive == '{"toolCallId": "t"}'
    )
    assert SECRET not in " ".join(argv)


def test_container_args_omit_unset_options(world: Env) -> None:
    assert container_args(world.options(query=None), "j") == ["coord", "--job-id", "j"]


def test_wait_for_proxy_returns_once_the_port_listens() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen_later() -> None:
        time.sleep(0.2)
        server.bind(("127.0.0.1", port))
        server.listen()

    threading.Thread(target=listen_later).start()
    started = time.monotonic()
    assert wait_for_proxy(f"http://127.0.0.1:{port}", timeout=5) is None
    assert 0.15 < time.monotonic() - started < 3
    server.close()


def test_wait_for_proxy_gives_up_with_a_message() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    message = wait_for_proxy(f"http://127.0.0.1:{port}", timeout=0.2)
    assert message is not None and f"127.0.0.1:{port}" in message and "did not accept" in message


def test_wait_for_proxy_without_a_proxy_is_a_no_op() -> None:
    assert wait_for_proxy(None) is None
