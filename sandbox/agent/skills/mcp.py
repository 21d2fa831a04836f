"""MCP skills through the official MCP Python SDK: stdio subprocesses, SSE and streamable-HTTP endpoints.

Why a lifecycle task per skill: the SDK's transports are anyio context managers that own task groups, and
a task group must be exited by the task that entered it. Each skill therefore lives in one dedicated task
(enter transport and session, signal ready, wait for close, exit); tool calls from any task go through the
session, which multiplexes them. A crash of the server ends that task and turns later calls into error
results the model can see, plus one `skillDisconnected` event.

Why stderr goes through an OS pipe read by a thread: the SDK hands `errlog` straight to the child as its
stderr, so it must be a real file descriptor; reading it line by line gives `skillStderr` events without
ever letting a chatty server block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox._errors import ToolError, UserError
from sandbox._hardening import confined_command
from sandbox.agent._env import skill_env
from sandbox.agent.skills._skill import Skill, ToolOutput, ToolSpec
from sandbox.events import (
    EventBase,
    ImageInlinePart,
    ServerInfo,
    SkillConnected,
    SkillDisconnected,
    SkillStarting,
    SkillStderr,
    TextPart,
)

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from sandbox.config import McpSseSkill, McpStdioSkill

__all__ = ["McpSkill", "SkillContext", "stdio_command"]

_STDERR_LINE_LIMIT = 4000


@dataclass(frozen=True)
class SkillContext:
    """What a skill needs from its run: ids for its events, the event sink, env source and workspace."""

    job_id: str
    run_id: str
    emit: Callable[[EventBase], None]
    env: dict[str, str]
    workspace: Path
    loop: asyncio.AbstractEventLoop


def stdio_command(skill_name: str, cfg: McpStdioSkill) -> tuple[str, list[str]]:
    """`command` plus `[packageName]` or `args`; `npx` gets `-y` so it never prompts (Perstack's rule)."""
    if (cfg.package_name is None) == (cfg.args is None):
        raise UserError(f"Skill {skill_name}: set exactly one of packageName or args")
    from sandbox.skills_lock import installed_command

    # Inside a sandbox image the package was installed at build time: start it offline, no registry.
    installed = installed_command(cfg)
    if installed is not None:
        return installed
    args = [cfg.package_name] if cfg.package_name is not None else list(cfg.args or ())
    if Path(cfg.command).name == "npx" and "-y" not in args and "--yes" not in args:
        args.insert(0, "-y")
    return cfg.command, args


class _StderrPump:
    """Reads a pipe in a daemon thread and emits one `skillStderr` per line on the event loop."""

    def __init__(self, ctx: SkillContext, skill_name: str) -> None:
        self._ctx = ctx
        self._skill = skill_name
        self.read_fd, self.write_fd = os.pipe()
        self.write_file = os.fdopen(self.write_fd, "w", closefd=True)
        self._thread = threading.Thread(target=self._run, name=f"stderr:{skill_name}", daemon=True)
        self._thread.start()

    def close_write_end(self) -> None:
        with contextlib.suppress(OSError):
            self.write_file.close()

    def _run(self) -> None:
        with os.fdopen(self.read_fd, "rb", closefd=True) as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:
                    self._emit(line[:_STDERR_LINE_LIMIT])

    def _emit(self, line: str) -> None:
        event = SkillStderr(
            job_id=self._ctx.job_id, run_id=self._ctx.run_id, skill_name=self._skill, message=line
        )
        with contextlib.suppress(RuntimeError):  # loop closed at shutdown
            self._ctx.loop.call_soon_threadsafe(self._ctx.emit, event)


class McpSkill(Skill):
    """An `mcpStdioSkill` or `mcpSseSkill` (SSE or streamable HTTP, chosen from the endpoint)."""

    kind = "mcp"

    def __init__(
        self,
        name: str,
        cfg: McpStdioSkill | McpSseSkill,
        ctx: SkillContext,
        *,
        command_override: tuple[str, list[str]] | None = None,
    ) -> None:
        super().__init__(
            name,
            description=cfg.description,
            rule=cfg.rule,
            pick=cfg.pick,
            omit=cfg.omit,
            lazy=getattr(cfg, "lazy_init", False),
        )
        self._cfg = cfg
        self._ctx = ctx
        self._command_override = command_override
        self._session: ClientSession | None = None
        self._tools: list[ToolSpec] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._disconnected = False
        self._connected = False
        self._start_lock = asyncio.Lock()
        # Resolved now so a missing `requiredEnv` fails the run before anything starts.
        self._env = skill_env(name, ctx.env, cfg.required_env) if hasattr(cfg, "required_env") else None

    @property
    def ready(self) -> bool:
        """Connected at least once: a server that died keeps its tools listed, and calls to them explain
        that it is gone (more useful to the model than the tools silently vanishing)."""
        return self._connected

    def _all_tools(self) -> list[ToolSpec]:
        return list(self._tools)

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        async with self._start_lock:
            if self._task is None:
                self._task = asyncio.create_task(self._lifecycle(), name=f"skill:{self.name}")
        await self._ready.wait()
        if isinstance(self._error, UserError):
            raise self._error
        if self._error is not None:
            raise ToolError(f"Skill {self.name} failed to start: {_describe(self._error)}") from self._error

    async def _lifecycle(self) -> None:
        from mcp.client.session import ClientSession

        from sandbox.config import McpStdioSkill

        t0 = time.perf_counter()
        pump: _StderrPump | None = None
        try:
            async with AsyncExitStack() as stack:
                if isinstance(self._cfg, McpStdioSkill):
                    pump = _StderrPump(self._ctx, self.name)
                    streams = await stack.enter_async_context(self._stdio(pump))
                else:
                    streams = await stack.enter_async_context(self._remote())
                t_spawn = time.perf_counter()
                session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
                init = await session.initialize()
                t_handshake = time.perf_counter()
                self._tools = await _list_tools(session)
                t_tools = time.perf_counter()
                self._session = session
                self._connected = True
                info = getattr(init, "server_info", None)
                self._ctx.emit(
                    SkillConnected(
                        job_id=self._ctx.job_id,
                        run_id=self._ctx.run_id,
                        skill_name=self.name,
                        server_info=ServerInfo(name=info.name, version=info.version) if info else None,
                        spawn_duration_ms=_ms(t_spawn - t0),
                        handshake_duration_ms=_ms(t_handshake - t_spawn),
                        tool_discovery_duration_ms=_ms(t_tools - t_handshake),
                        connect_duration_ms=_ms(t_handshake - t0),
                        total_duration_ms=_ms(t_tools - t0),
                    )
                )
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            self._error = self._error or ToolError("cancelled")
            raise
        except BaseException as exc:  # surfaced through start()/call(), never lost
            self._error = exc
        finally:
            self._session = None
            if pump is not None:
                pump.close_write_end()
            self._ready.set()
            self._mark_disconnected()

    def _stdio(self, pump: _StderrPump) -> contextlib.AbstractAsyncContextManager[Any]:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        from sandbox.config import McpStdioSkill

        assert isinstance(self._cfg, McpStdioSkill)
        command, args = self._command_override or stdio_command(self.name, self._cfg)
        env = self._env if self._env is not None else skill_env(self.name, self._ctx.env, ())
        self._ctx.emit(
            SkillStarting(
                job_id=self._ctx.job_id,
                run_id=self._ctx.run_id,
                skill_name=self.name,
                command=command,
                args=args,
            )
        )
        # In its own Landlock domain: no other skill or tool program can read its environ or memory.
        program, program_args = confined_command(command, args)
        params = StdioServerParameters(
            command=program, args=program_args, env=env, cwd=str(self._ctx.workspace)
        )

        @contextlib.asynccontextmanager
        async def transport() -> Any:
            async with stdio_client(params, errlog=pump.write_file) as streams:
                pump.close_write_end()  # the child holds its own copy now
                yield streams

        return transport()

    def _remote(self) -> contextlib.AbstractAsyncContextManager[Any]:
        endpoint = str(getattr(self._cfg, "endpoint", ""))
        self._ctx.emit(
            SkillStarting(
                job_id=self._ctx.job_id,
                run_id=self._ctx.run_id,
                skill_name=self.name,
                command=endpoint,
                args=[],
            )
        )
        if endpoint.rstrip("/").endswith("/sse"):
            from mcp.client.sse import sse_client

            return sse_client(endpoint)
        from mcp.client.streamable_http import streamable_http_client

        return streamable_http_client(endpoint)

    def _mark_disconnected(self) -> None:
        if not self._disconnected:
            self._disconnected = True
            self._ctx.emit(
                SkillDisconnected(job_id=self._ctx.job_id, run_id=self._ctx.run_id, skill_name=self.name)
            )

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is not None and not task.done() and not self._ready.is_set():
            task.cancel()  # still connecting (a lazy skill): do not wait for its handshake
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    # ------------------------------------------------------------------------------------------ calls

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutput:
        if self._task is None:
            await self.start()
        session = self._session
        if session is None or (self._task is not None and self._task.done()):
            reason = _describe(self._error) if self._error else "the server is not running"
            return ToolOutput.text(f"Skill {self.name} is not available: {reason}", is_error=True)
        try:
            result = await session.call_tool(tool_name, args)
        except Exception as exc:
            if _is_connection_closed(exc):
                # The server is gone (crashed or exited): later calls fail fast instead of hanging.
                self._session = None
                self._error = exc
                self._stop.set()
                self._mark_disconnected()
            return ToolOutput.text(
                f"Skill {self.name} failed to run {tool_name}: {_describe(exc)}", is_error=True
            )
        return _convert_result(result)


async def _list_tools(session: ClientSession) -> list[ToolSpec]:
    from mcp.types import PaginatedRequestParams

    tools: list[ToolSpec] = []
    cursor: str | None = None
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(
            ToolSpec(name=t.name, description=t.description or "", input_schema=dict(t.input_schema))
            for t in page.tools
        )
        cursor = page.next_cursor
        if not cursor:
            return tools


def _convert_result(result: Any) -> ToolOutput:
    """MCP content blocks -> Perstack tool-result parts (text and inline images; other blocks as text)."""
    parts: list[Any] = []
    for block in getattr(result, "content", []) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(TextPart(text=block.text))
        elif kind == "image":
            parts.append(ImageInlinePart(encoded_data=block.data, mime_type=block.mime_type))
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(TextPart(text=text if text is not None else f"[resource {resource.uri}]"))
        else:
            parts.append(TextPart(text=block.model_dump_json(by_alias=True, exclude_none=True)))
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(TextPart(text=json.dumps(structured, ensure_ascii=False)))
    return ToolOutput(parts=parts, is_error=bool(getattr(result, "is_error", False)))


def _is_connection_closed(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, ConnectionError | EOFError | OSError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
