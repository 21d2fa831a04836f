"""The entry point: the container's fast path past the Typer app, and the start-up collector pause."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import _startup


def _python(
    code: str, *, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_importing_the_entry_point_does_not_load_the_app() -> None:
    proc = _python(
        "import sys, sandbox.cli; print(sorted(m for m in ('typer', 'sandbox.cli._app') if m in sys.modules))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_app_is_still_reachable_as_an_attribute() -> None:
    import sandbox.cli

    assert "run" in {c.name for c in sandbox.cli.app.registered_commands}
    with pytest.raises(AttributeError):
        _ = sandbox.cli.no_such_thing


def test_container_run_takes_the_fast_path(tmp_path: Path) -> None:
    """`sandbox internal container-run` never imports Typer, and still rejects a bad payload clearly."""
    config = tmp_path / "perstack.json"
    config.write_text(
        json.dumps(
            {"model": "m", "provider": {"providerName": "anthropic"}, "experts": {"a": {"instruction": "x"}}}
        )
    )
    env = {**os.environ, "SANDBOX_CONFIG": str(config)}
    code = (
        "import sys; sys.argv = ['sandbox', 'internal', 'container-run', '--provider', 'anthropic']\n"
        "import os; real_exit = os._exit\n"
        "def spy(code):\n"
        "    print('typer' in sys.modules, file=sys.stderr, flush=True); real_exit(code)\n"
        "os._exit = spy\n"
        "from sandbox.cli import main; main()"
    )
    proc = _python(code, stdin="not json\n", env=env)
    assert proc.returncode == 2
    assert "container-run expects one JSON line on stdin" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False"
    proc = _python(code, stdin="[1, 2]\n", env=env)
    assert proc.returncode == 2 and "expects a JSON object" in proc.stderr


def test_the_collector_pause_ends_with_a_frozen_heap() -> None:
    assert gc.isenabled()
    try:
        _startup.pause_gc()
        assert not gc.isenabled()
        _startup.pause_gc()  # a second pause is the same pause
        _startup.resume_gc(collect=True)
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert _startup._timer is None
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_pause_nobody_ends_ends_by_itself() -> None:
    try:
        _startup.pause_gc(max_s=0.05)
        deadline = time.monotonic() + 5
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


@pytest.mark.parametrize("skip", [False, True])
def test_httpx_command_line_client_is_not_imported(skip: bool) -> None:
    """httpx imports its CLI (rich, pygments, click) when they are installed, as they are here; the entry
    point skips it, and httpx itself still works."""
    code = (
        "import sys\nfrom sandbox._startup import skip_unused_modules\n"
        f"{'skip_unused_modules()' if skip else 'pass'}\n"
        "import httpx\nassert callable(httpx.main) and httpx.Client\nprint('rich' in sys.modules)"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(not skip)
