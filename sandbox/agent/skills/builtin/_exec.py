"""The base skill's `exec`: run a program without a shell, inside the workspace, with a filtered env.

No shell means no expansion, pipes or `;` chaining: the model names a program and its argv. The child
gets only the safe variables plus the `env` the model passes (protected names such as LD_PRELOAD and
NODE_OPTIONS are dropped), runs in its own process group and is killed as a group on timeout. In the
sandbox it also runs in a Landlock domain of its own (`sandbox._hardening.confined_command`), so it cannot
read the memory or environ of the runtime, a skill or another program; the program is looked up here first
so that a missing one is still reported as "Cannot run".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from typing import Any

from sandbox._errors import ToolError
from sandbox._hardening import LAUNCHER, confined_command
from sandbox.agent._env import filtered_env
from sandbox.agent.skills.builtin._paths import Workspace

__all__ = ["EXEC_SCHEMA", "run_exec"]

_MAX_OUTPUT = 100_000
_DEFAULT_TIMEOUT_MS = 60_000

EXEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "Program to run (no shell)"},
        "args": {"type": "array", "items": {"type": "string"}},
        "cwd": {"type": "string", "description": "Working directory relative to the workspace"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout": {"type": "integer", "description": "Milliseconds (default 60000)"},
        "stdout": {"type": "boolean", "description": "Return stdout (default true)"},
        "stderr": {"type": "boolean", "description": "Return stderr (default true)"},
    },
    "required": ["command"],
}


def _truncate(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    if len(text) > _MAX_OUTPUT:
        return text[:_MAX_OUTPUT] + f"\n[truncated {len(text) - _MAX_OUTPUT} characters]"
    return text


async def run_exec(ws: Workspace, env_source: Mapping[str, str], args: dict[str, Any]) -> str:
    command = args.get("command")
    argv = args.get("args", [])
    if not isinstance(command, str) or not command:
        raise ToolError("command must be a non-empty string")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ToolError("args must be an array of strings")
    cwd = ws.resolve(str(args.get("cwd") or "."), must_exist=True)
    extra = args.get("env") or {}
    if not isinstance(extra, dict):
        raise ToolError("env must be an object of strings")
    env = filtered_env(env_source, {str(k): str(v) for k, v in extra.items()})
    timeout_ms = args.get("timeout") or _DEFAULT_TIMEOUT_MS
    confining = os.path.isfile(LAUNCHER)
    if confining and "/" not in command and shutil.which(command, path=env.get("PATH")) is None:
        raise ToolError(f"Cannot run {command}: No such file or directory")
    program, program_args = confined_command(command, argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            *program_args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ToolError(f"Cannot run {command}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=float(timeout_ms) / 1000)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise ToolError(f"{command} timed out after {timeout_ms} ms") from None
    parts = [f"exit code: {proc.returncode}"]
    if args.get("stdout", True) and out:
        parts.append(f"stdout:\n{_truncate(out)}")
    if args.get("stderr", True) and err:
        parts.append(f"stderr:\n{_truncate(err)}")
    result = "\n".join(parts)
    if proc.returncode != 0:
        raise ToolError(result)
    return result
