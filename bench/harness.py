"""Shared plumbing of the benchmark parts: timed processes, a frozen copy of the code, the docker site.

* `timed()` runs a process and records when its first stdout line arrived and when it exited
  (`time.perf_counter`, stdout read line by line as it comes, stderr drained by a thread).
* `Snapshot` copies the `sandbox` package and its assets (templates/, proxy/, compose/) to a temp dir and
  runs `python -m sandbox` from there. The expert image's tag hashes a wheel of the running code, so
  without the copy an edit in the checkout during a benchmark would trigger a rebuild in the middle of a
  "warm" series. Every `sandbox` command of one benchmark run therefore uses the same frozen code.
* `DockerSite` holds what the docker parts share: the test TLS material (`sandbox.docker._testkit`), the
  bench Expert's images (built once with `sandbox build`), and the scripted LLM server running in a
  container on the egress side, reached by the sandbox through its proxy exactly as in the e2e tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("SANDBOX_BENCH_BASE_IMAGE", "sandbox-base:bookworm")
NODE_IMAGE = os.environ.get("SANDBOX_BENCH_NODE_IMAGE", "sandbox-node:22")
API_KEY = "sk-bench-not-a-secret"

__all__ = [
    "API_KEY",
    "BASE_IMAGE",
    "NODE_IMAGE",
    "REPO",
    "BenchError",
    "DockerSite",
    "Proc",
    "Snapshot",
    "bench_toml",
    "check_run",
    "event_time",
    "log",
    "temp_dir",
    "timed",
]


class BenchError(RuntimeError):
    """A benchmark part cannot produce a valid number (setup failed, a run failed, a check failed)."""


_LOG_LOCK = threading.Lock()


def log(message: str) -> None:
    """Progress on stderr (stdout is kept for the final report)."""
    with _LOG_LOCK:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ processes


@dataclass
class Proc:
    """A finished process: exit code, seconds to the first stdout line and to exit, its output."""

    argv: list[str]
    code: int
    first_line_s: float | None
    total_s: float
    stdout: list[str]
    stderr: str
    line_times: list[float] = field(default_factory=list)

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        """(seconds since start, event) for every stdout line that is a JSON object."""
        out = []
        for t, line in zip(self.line_times, self.stdout, strict=False):
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    out.append((t, obj))
        return out

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        return f"`{' '.join(self.argv[:6])} ...` exited {self.code}\n{tail}"


def timed(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
    stdin: IO[bytes] | int | None = subprocess.DEVNULL,
) -> Proc:
    """Run `argv`; time the first stdout line and the exit. Kills the process after `timeout` seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=stdin,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_chunks: list[bytes] = []
    err_pipe = proc.stderr
    drain = threading.Thread(
        target=lambda: err_chunks.extend(iter(lambda: err_pipe.read(65536), b"")), daemon=True
    )
    drain.start()
    killer = threading.Timer(timeout, proc.kill)
    killer.daemon = True
    killer.start()
    lines: list[str] = []
    times: list[float] = []
    try:
        for raw in proc.stdout:
            times.append(time.perf_counter() - t0)
            lines.append(raw.decode(errors="replace").rstrip("\r\n"))
        code = proc.wait()
    finally:
        killer.cancel()
    total = time.perf_counter() - t0
    drain.join(timeout=5)
    return Proc(
        list(argv),
        code,
        times[0] if times else None,
        total,
        lines,
        b"".join(err_chunks).decode(errors="replace"),
        times,
    )


# ------------------------------------------------------------------------------------------------ snapshot


class Snapshot:
    """A frozen copy of the code under test; `argv()` runs its `sandbox` CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, parent: Path, repo: Path = REPO) -> Snapshot:
        root = parent / "code"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
        shutil.copytree(repo / "sandbox", root / "sandbox", ignore=ignore)
        for section in ("templates", "proxy", "compose"):
            shutil.copytree(repo / section, root / section, ignore=ignore)
        snap = cls(root)
        check = subprocess.run(
            [sys.executable, "-c", "import sandbox, sys; print(sandbox.__file__)"],
            capture_output=True,
            text=True,
            env=snap.env(os.environ),
            cwd=parent,
            check=False,
        )
        if check.returncode != 0 or not check.stdout.strip().startswith(str(root)):
            raise BenchError(f"the code snapshot does not import from {root}: {check.stdout}{check.stderr}")
        return snap

    def env(self, base: Mapping[str, str], **extra: str) -> dict[str, str]:
        env = dict(base)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), *filter(None, [base.get("PYTHONPATH")])])
        if os.getuid() == 0 and not env.get("SANDBOX_USER"):
            # As root a run refuses to start the Expert as root unless asked in the process environment
            # (sandbox/docker/_user.py); the bench's workspaces are root's, as CI's are.
            env["SANDBOX_USER"] = "0:0"
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sandbox", *args]


def bench_toml(base_url: str, *, expert: str = "bench", skills: str = "", description: str = "") -> str:
    """The bench Expert: Anthropic wire protocol against `base_url` (the scripted server), optional skills."""
    desc = description or "Benchmark Expert: one step, no tools."
    return (
        'model = "claude-bench"\n'
        "[provider]\n"
        'providerName = "anthropic"\n'
        "[provider.setting]\n"
        f'baseUrl = "{base_url}"\n'
        f'[experts."{expert}"]\n'
        f'description = "{desc}"\n'
        'instruction = "Answer in one word."\n'
        f"{skills}"
    )


# ------------------------------------------------------------------------------------------------ docker


_BUILD_SHIM = "import typer; from sandbox.cli.build import build_command; typer.run(build_command)"


class DockerSite:
    """Images, TLS and the scripted LLM server shared by the docker parts of one benchmark run."""

    def __init__(self, snapshot: Snapshot, work: Path) -> None:
        from sandbox.docker import _testkit

        # The test kit's TLS helper (`llm_tls`, earlier `test_tls`): CA, server cert, `--ca-cert` bundle.
        make_tls = getattr(_testkit, "llm_tls", None) or getattr(_testkit, "test_tls")  # noqa: B009
        self.snapshot = snapshot
        self.work = work
        self.tls = make_tls()
        self._endpoint: Any = None
        self._client: Any = None
        self.expert_image = ""
        self.proxy_image = ""
        self.config_dir = work / "bench-expert"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config = self.config_dir / "perstack.toml"
        self._build_argv: list[str] | None = None

    # -- engine

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=300)
            self._client.ping()
        return self._client

    # -- sandbox CLI

    def env(self, **extra: str) -> dict[str, str]:
        return self.snapshot.env(os.environ, ANTHROPIC_API_KEY=API_KEY, **extra)

    def sandbox(self, *args: str, cwd: Path, timeout: float = 900.0) -> Proc:
        return timed(self.snapshot.argv(*args), env=self.env(), cwd=cwd, timeout=timeout)

    def image_args(self) -> list[str]:
        return ["--base-image", BASE_IMAGE, "--node-image", NODE_IMAGE, "--ca-cert", str(self.tls.bundle)]

    def build(self, config: Path, expert: str) -> tuple[dict[str, Any], Proc]:
        """`sandbox build EXPERT --json`: the image tags, what was built, its own seconds; and the process."""
        args = [expert, "--config", str(config), "--json", *self.image_args()]
        proc: Proc | None = None
        if self._build_argv is None:
            proc = self.sandbox("build", *args, cwd=config.parent)
            if proc.code == 2 and "No such command 'build'" in proc.stderr:
                # sandbox/cli/build.py exists but this checkout's CLI does not register it yet: run the
                # same command function as a one-command typer app.
                log("`sandbox build` is not registered in this CLI; running sandbox.cli.build directly")
                self._build_argv = [sys.executable, "-c", _BUILD_SHIM]
                proc = None
            else:
                self._build_argv = self.snapshot.argv("build")
        if proc is None:
            proc = timed([*self._build_argv, *args], env=self.env(), cwd=config.parent, timeout=900)
        if proc.code != 0:
            raise BenchError(f"sandbox build {expert} failed: {proc.describe()}")
        try:
            data: dict[str, Any] = json.loads("\n".join(proc.stdout))
        except ValueError as exc:
            raise BenchError(f"sandbox build --json printed no JSON: {proc.stdout[-5:]}") from exc
        return data, proc

    # -- the bench Expert and its LLM server

    def prepare(self) -> None:
        """Build the bench Expert's images (once) and start the scripted LLM server from the expert image."""
        if self._endpoint is not None:
            return
        from sandbox.docker._testkit import start_llm_container

        # The image does not depend on the provider's URL (only the proxy's allowlist does), so build with
        # a placeholder first: the LLM server container runs from this very image.
        self.config.write_text(bench_toml("https://llm.test:8443"))
        log("building the bench Expert's images (skipped when their content tags exist)")
        data, _ = self.build(self.config, "bench")
        self.expert_image, self.proxy_image = data["expertImage"], data["proxyImage"]
        log(f"images: {self.expert_image}, {self.proxy_image} (built: {data['built'] or 'nothing'})")
        self._endpoint = start_llm_container(
            self.client.api, self.expert_image, self.tls, labels={"sandbox.bench": "1"}
        )
        self.config.write_text(bench_toml(self._endpoint.base_url))
        log(
            f"scripted LLM server at {self._endpoint.base_url} (container {self._endpoint.container_id[:12]})"
        )

    @property
    def endpoint(self) -> Any:
        self.prepare()
        return self._endpoint

    def script(self, turns: int = 1) -> None:
        """Give the scripted server `turns` one-step answers (one per run that follows)."""
        from sandbox.testing import Turn

        self.endpoint.remote().set_script([Turn("done") for _ in range(turns)])

    def run_args(
        self, workspace: Path, *, job_id: str | None = None, config: Path | None = None, expert: str = "bench"
    ) -> list[str]:
        ep = self.endpoint
        args = [
            "run",
            expert,
            "go",
            "--runtime",
            "docker",
            "--config",
            str(config or self.config),
            "--workspace",
            str(workspace),
            *self.image_args(),
            "--add-host",
            ep.add_host,
            "--allow-private",
            ep.allow_private,
        ]
        if job_id:
            args += ["--job-id", job_id]
        return args

    def run_expert(self, workspace: Path, *, job_id: str | None = None, timeout: float = 300.0) -> Proc:
        """One `sandbox run bench go --runtime docker` (the scripted server must hold a turn for it)."""
        workspace.mkdir(parents=True, exist_ok=True)
        return self.sandbox(*self.run_args(workspace, job_id=job_id), cwd=workspace, timeout=timeout)

    def close(self) -> None:
        if self._endpoint is not None:
            with contextlib.suppress(Exception):
                self._endpoint.stop(self.client.api)
            self._endpoint = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


def check_run(proc: Proc, *, built_ok: bool = False) -> str | None:
    """Why a `sandbox run` does not count (failed, no completeRun, built an image), or None when it does."""
    types = [e.get("type") for _, e in proc.events()]
    if proc.code != 0:
        return f"exit code {proc.code}: {proc.describe()}"
    if "completeRun" not in types:
        return f"no completeRun event (events: {types})"
    if not built_ok and "building the " in proc.stderr:
        return "the run built an image (the image was not cached)"
    return None


def event_time(proc: Proc, kind: str) -> float | None:
    """Seconds from the start of `proc` to its first event of type `kind`."""
    for t, event in proc.events():
        if event.get("type") == kind:
            return t
    return None


def temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
