"""Running one Expert through one CLI: checks, process, stream parsing, Perstack events and job storage.

Shared by every `CliRuntime`; adapters never see events or the job store. The sequence (Perstack's own
external adapters emit the same, perstack.md §4):

    initializeRuntime → startRun → (callTools → resolveToolResults)* → completeRun | stopRunByError

Events are emitted as the CLI's lines arrive, and every run event is recorded with `JobStore.record`, so
`./perstack/jobs/<jobId>/` gets the event files, a checkpoint after each finished tool step and at the
end, `job.json` and the run setting — the same layout the native runtime writes.

Usage mapping: CLIs report totals (per-call figures in their streams are partial or absent), so the
total rides once on `completeRun.usage` / `stopRunByError`'s checkpoint and `callTools.usage` is zero; the
job's sum is then the CLI's total. Perstack's `Usage` has integer fields only, so a figure the CLI does
not report is 0 there; the null-preserving figures (plus cost, turns, the CLI's session id) are in the
checkpoint's `metadata.usage`.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sandbox._errors import AdapterError
from sandbox.events import (
    CallTools,
    Checkpoint,
    CheckpointError,
    CheckpointStatus,
    CompleteRun,
    EventBase,
    ExpertMessage,
    ExpertRef,
    InitializeRuntime,
    InstructionMessage,
    Message,
    ResolveToolResults,
    RunInput,
    StartRun,
    Step,
    StopRunByError,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    Usage,
    UserMessage,
    create_id,
    now_ms,
)
from sandbox.events import ToolResult as EventToolResult
from sandbox.jobs import JobStore
from sandbox.request import CliRun, RunRequest, build_run_setting, resolve_run
from sandbox.settings import DEFAULT_CLI_TIMEOUT_MS, CliLimits, resolve_cli_limits

from ._base import CliRequest, CliRuntime, Emit
from ._env import filter_env
from ._expert import ExpertMapping, SkillStatus, map_expert
from ._process import ProcessResult, ProcessSpec
from ._stream import Call, Item, Notice, RunUsage, StreamState, Text, ToolCalls, ToolResult, decode_line

if TYPE_CHECKING:
    from sandbox.options import RunOptions

__all__ = ["DEFAULT_TIMEOUT_S", "RECORD_VAR", "Note", "run_cli"]

RECORD_VAR = "SANDBOX_RECORD_STREAM"

DEFAULT_TIMEOUT_S = DEFAULT_CLI_TIMEOUT_MS / 1000
"""Wall-clock limit of one CLI run when `--timeout` is not given (the CLIs have none of their own)."""

Note = Callable[[str], None]


def _stderr_note(message: str) -> None:
    print(f"sandbox: {message}", file=sys.stderr, flush=True)


def _usage_model(usage: RunUsage) -> Usage:
    """Perstack's integer Usage; figures the CLI does not report become 0 here (null in metadata)."""
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        reasoning_tokens=usage.reasoning_tokens or 0,
        total_tokens=usage.total_tokens or 0,
        cached_input_tokens=usage.cached_input_tokens or 0,
    )


class _Recorder:
    """Turns intermediate items into Perstack events, emits them, and records them in the job store.

    Steps: step 1 starts with the run; each batch of tool calls whose results have all arrived closes a
    step (a `proceeding` checkpoint is stored) and opens the next; the last step ends the run.
    """

    def __init__(
        self,
        *,
        runtime: CliRuntime,
        emit: Emit,
        store: JobStore,
        job_id: str,
        run_id: str,
        expert: ExpertMapping,
        query: str,
        state: StreamState,
    ) -> None:
        self.runtime = runtime
        self._emit = emit
        self.store = store
        self.job_id = job_id
        self.run_id = run_id
        self.expert_key = expert.expert_key
        self.expert_ref = ExpertRef(key=expert.expert_key, name=expert.expert_name, version=expert.version)
        self.state = state
        self.step = 1
        self.step_started = now_ms()
        self.input_messages: list[Message] = [
            InstructionMessage(contents=[TextPart(text=expert.system_prompt)]),
            UserMessage(contents=[TextPart(text=query)]),
        ]
        self.messages: list[Message] = list(self.input_messages)
        self.step_messages: list[Message] = []
        self.text: list[str] = []
        self.pending: dict[str, ToolCall] = {}
        self.metadata: dict[str, Any] = {"runtime": runtime.id}

    def emit(self, event: EventBase) -> None:
        self.store.record(event)
        self._emit(event)

    def _checkpoint(
        self, status: CheckpointStatus, *, usage: Usage | None = None, error: CheckpointError | None = None
    ) -> Checkpoint:
        return Checkpoint(
            id=create_id(),
            job_id=self.job_id,
            run_id=self.run_id,
            status=status,
            step_number=self.step,
            messages=list(self.messages),
            expert=self.expert_ref,
            usage=usage if usage is not None else Usage(),
            metadata={
                **self.metadata,
                "usage": self.state.usage.to_dict(),
                "sessionId": self.state.session_id,
                "model": self.state.model,
                **({"mcpStatus": dict(self.state.mcp_status)} if self.state.mcp_status else {}),
            },
            error=error,
            pending_tool_calls=list(self.pending.values()) or None,
        )

    def _ids(self) -> dict[str, Any]:
        return {
            "expert_key": self.expert_key,
            "job_id": self.job_id,
            "run_id": self.run_id,
            "step_number": self.step,
        }

    def start(self) -> None:
        self.emit(
            StartRun(
                **self._ids(),
                initial_checkpoint=self._checkpoint("init"),
                input_messages=list(self.input_messages),
            )
        )

    def handle(self, item: Item) -> None:
        if isinstance(item, Text):
            if item.text:
                self.text.append(item.text)
        elif isinstance(item, ToolCalls):
            self._call_tools(item)
        elif isinstance(item, ToolResult):
            self._resolve(item)
        # Notice: shown by the caller, not an event.

    def _call_tools(self, item: ToolCalls) -> None:
        text = "".join(self.text) + item.text
        self.text.clear()
        calls: list[ToolCall] = []
        parts: list[TextPart | ToolCallPart] = [TextPart(text=text)] if text else []
        for call in item.calls:
            skill = call.skill or self.runtime.id
            tool_call = ToolCall(id=call.id, skill_name=skill, tool_name=call.name, args=dict(call.args))
            self.pending[call.id] = tool_call
            calls.append(tool_call)
            parts.append(ToolCallPart(tool_call_id=call.id, tool_name=call.name, args=dict(call.args)))
        message = ExpertMessage(contents=list(parts))
        self.messages.append(message)
        self.step_messages.append(message)
        # Usage is reported once, on completeRun: CLIs give totals, not reliable per-call figures.
        self.emit(CallTools(**self._ids(), new_message=message, tool_calls=calls, usage=Usage()))

    def _resolve(self, item: ToolResult) -> None:
        call = self.pending.pop(item.call_id, None)
        if call is None:
            # A result for a call the stream never announced: synthesise the call so the step is whole.
            self._call_tools(ToolCalls(calls=(_call_from_result(item),)))
            call = self.pending.pop(item.call_id)
        result = EventToolResult(
            id=item.call_id,
            skill_name=call.skill_name,
            tool_name=call.tool_name,
            result=[TextPart(text=item.output)],
        )
        part = ToolResultPart(
            tool_call_id=item.call_id,
            tool_name=call.tool_name,
            contents=[TextPart(text=item.output)],
            is_error=item.is_error or None,
        )
        message = ToolMessage(contents=[part])
        self.messages.append(message)
        self.step_messages.append(message)
        self.emit(ResolveToolResults(**self._ids(), tool_results=[result]))
        if not self.pending:
            self.store.store_checkpoint(self._checkpoint("proceeding"))
            self.step += 1
            self.step_messages = []
            self.step_started = now_ms()
        self.state.steps = self.step

    def finish(self, error: str | None, *, error_name: str = "AdapterError") -> None:
        total = _usage_model(self.state.usage)
        final = self.state.final_text if self.state.final_text is not None else "".join(self.text)
        if error is None:
            message = ExpertMessage(contents=[TextPart(text=final)])
            self.messages.append(message)
            self.step_messages.append(message)
        self.state.steps = self.step
        step = Step(
            step_number=self.step,
            new_messages=list(self.step_messages),
            usage=total,
            started_at=self.step_started,
            finished_at=now_ms(),
        )
        if error is None:
            checkpoint = self._checkpoint("completed", usage=total)
            self.emit(CompleteRun(**self._ids(), checkpoint=checkpoint, step=step, text=final, usage=total))
        else:
            problem = CheckpointError(name=error_name, message=error, is_retryable=False)
            checkpoint = self._checkpoint("stoppedByError", usage=total, error=problem)
            self.emit(StopRunByError(**self._ids(), checkpoint=checkpoint, step=step, error=problem))


def _call_from_result(item: ToolResult) -> Call:
    return Call(id=item.call_id, name=item.name or "tool", args={})


def _last_lines(text: str, count: int = 5) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _error_of(
    runtime: CliRuntime, state: StreamState, result: ProcessResult, timeout_s: float
) -> tuple[str, str] | None:
    """(name, message) of the run's failure, or None if it succeeded. The CLI's own words come first."""
    if result.timed_out:
        return (
            "TimeoutError",
            f"{runtime.name} did not finish within {timeout_s:g}s; its process group was killed",
        )
    if result.interrupted is not None:
        name = signal.Signals(result.interrupted).name
        return "Interrupted", f"{runtime.name} was stopped by {name}"
    if state.error:
        return "AdapterError", state.error
    if result.exit_code != 0:
        detail = _last_lines(result.stderr) or "no error message"
        return "AdapterError", f"{runtime.name} exited with code {result.exit_code}: {detail}"
    if not state.finished:
        detail = _last_lines(result.stderr)
        return "AdapterError", f"{runtime.name} ended without a final result" + (
            f": {detail}" if detail else ""
        )
    return None


def _resolve_model(runtime: CliRuntime, options: RunOptions, note: Note) -> str | None:
    """`--model` or perstack.toml's model, if this CLI understands it; otherwise the CLI's default."""
    for source, model in (("--model", options.model), ("perstack.toml", options.config.model)):
        if not model:
            continue
        if runtime.accepts_model(model):
            return model
        note(f"{runtime.id}: model {model!r} from {source} is not a {runtime.name} model; using its default")
    return None


def _preflight(runtime: CliRuntime, options: RunOptions) -> str:
    """Binary and credentials, checked before anything is emitted: the documented errors."""
    binary = runtime.find_binary(options.env)
    if binary is None:
        raise AdapterError(
            f"{runtime.name}: `{runtime.binary}` was not found on PATH", hint=runtime.install_hint
        )
    auth = runtime.find_auth(options.env)
    if auth is None:
        raise AdapterError(f"{runtime.name}: no credentials found", hint=runtime.auth_hint())
    if options.continue_latest or options.continue_job or options.resume_from or options.interactive_result:
        raise AdapterError(
            f"{runtime.name}: --continue, --continue-job, --resume-from and -i "
            "are not supported by CLI runtimes"
        )
    if not options.query:
        raise AdapterError(f"{runtime.name}: a query is required")
    return binary


def run_cli(
    runtime: CliRuntime,
    options: RunOptions,
    emit: Emit,
    *,
    note: Note | None = None,
    request: RunRequest | None = None,
) -> int:
    """Run `options.expert_key` once through `runtime`; return 0, 1 (error), 130/143 (signals).

    Raises `AdapterError` before any event is emitted when the binary or the credentials are missing;
    after that, every failure is a `stopRunByError` event and exit code 1. `request`: the run already
    resolved (`sandbox.request`), as the native runtime takes it; resolved here from `options` when None.
    """
    say = note or _stderr_note
    binary = _preflight(runtime, options)  # before resolving: it refuses what a CLI cannot resume
    run = request or resolve_run(options, None)
    if run.checkpoint is not None or run.interactive_result is not None:
        raise AdapterError(f"{runtime.name}: a CLI runtime cannot resume a checkpoint")
    expert = map_expert(options.config, run.expert_key, options.env)
    limits = resolve_cli_limits(options, run.settings)
    scratch = Path(tempfile.mkdtemp(prefix=f"sandbox-{runtime.id}-"))
    try:
        cli_request = CliRequest(
            query=run.query or "",
            expert=expert,
            model=_resolve_model(runtime, options, say),
            max_steps=limits.max_steps,
            workspace=options.workspace,
            scratch=scratch,
            env=options.env,
            flags=runtime.supported_flags(binary, options.env),
        )
        invocation = runtime.build_invocation(cli_request)
        for line in invocation.notes:
            say(f"{runtime.id}: {line}")
        for skill in invocation.skills:
            verdict = "applied" if skill.applied else "NOT applied"
            say(f"{runtime.id}: skill {skill.name!r} ({skill.type}) {verdict}: {skill.detail}")
        child_env = filter_env(
            options.env,
            names=(*runtime.auth_env, *runtime.env_names, *options.env_names),
            prefixes=runtime.env_prefixes,
            extra=invocation.env,
        )
        timeout_s = limits.timeout_ms / 1000
        state = StreamState(servers=tuple(s.name for s in expert.servers), workdir=scratch)
        recorder = _start(
            runtime, options, run, emit, cli_request, invocation.skills, child_env, limits, binary, state
        )
        spec = ProcessSpec(
            argv=[binary, *invocation.args], env=child_env, cwd=options.workspace, timeout=timeout_s
        )
        result = _supervise(runtime, spec, state, recorder, options, say)
        runtime.finish(state, result)
        recorder.metadata.update({"exitCode": result.exit_code, "durationMs": int(result.duration_s * 1000)})
        failure = _error_of(runtime, state, result, timeout_s)
        if failure is None:
            recorder.finish(None)
            return 0
        recorder.finish(failure[1], error_name=failure[0])
        return 128 + result.interrupted if result.interrupted is not None else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _start(
    runtime: CliRuntime,
    options: RunOptions,
    run: RunRequest,
    emit: Emit,
    request: CliRequest,
    skills: list[SkillStatus],
    child_env: dict[str, str],
    limits: CliLimits,
    binary: str,
    state: StreamState,
) -> _Recorder:
    """Emit `initializeRuntime`, store the run setting, emit `startRun`; return the run's recorder."""
    job_id = run.job_id
    run_id = create_id()
    version = runtime.version(binary, options.env)
    model = request.model or f"{runtime.id}:default"
    max_retries = limits.max_retries  # the request's settings: 0 is a setting, not a falsy `or`
    expert = request.expert
    store = JobStore(options.jobs_dir)
    recorder = _Recorder(
        runtime=runtime,
        emit=emit,
        store=store,
        job_id=job_id,
        run_id=run_id,
        expert=expert,
        query=request.query,
        state=state,
    )
    recorder.metadata.update({"runtimeVersion": version, "skills": [s.to_dict() for s in skills]})
    emit(
        InitializeRuntime(
            job_id=job_id,
            run_id=run_id,
            runtime_version=version or "unknown",
            runtime=runtime.id,
            expert_name=expert.expert_key,
            experts=[expert.expert_key],
            model=model,
            max_steps=request.max_steps,
            max_retries=max_retries,
            timeout=limits.timeout_ms,
            query=request.query,
            skills=[s.to_dict() for s in skills],
        )
    )
    store.store_run_setting(
        build_run_setting(
            run,
            options.config,
            run_id=run_id,
            expert_key=expert.expert_key,
            run_input=RunInput(text=request.query),
            env=dict.fromkeys(sorted(child_env), ""),  # names only; values never reach the disk
            experts=(expert.expert_key, *expert.delegates),  # the prompt describes its delegates
            cli=CliRun(runtime=runtime.id, model=model, limits=limits),
        )
    )
    recorder.start()
    return recorder


def _supervise(
    runtime: CliRuntime,
    spec: ProcessSpec,
    state: StreamState,
    recorder: _Recorder,
    options: RunOptions,
    say: Note,
) -> ProcessResult:
    """Run the CLI, turning each stdout line into events as it arrives."""
    record = _recording(options.env.get(RECORD_VAR), runtime.id)

    def on_stdout(line: str) -> None:
        if record is not None:
            record.write(line + "\n")
        for obj in decode_line(line):
            try:
                items = list(runtime.parse(obj, state))
            except Exception as exc:  # a new CLI version's odd event must not kill the run
                say(f"{runtime.id}: skipped an event the adapter could not read ({exc!r}): {line[:200]}")
                continue
            for item in items:
                if isinstance(item, Notice):
                    say(f"{runtime.id}: {item.message}")
                recorder.handle(item)

    def on_stderr(line: str) -> None:
        if options.verbose and line.strip():
            say(f"{runtime.id} stderr: {line}")

    try:
        return runtime.spawner(spec, on_stdout, on_stderr)
    except OSError as exc:
        return ProcessResult(exit_code=127, stderr=f"cannot start {spec.argv[0]}: {exc}")
    finally:
        if record is not None:
            record.close()


def _recording(directory: str | None, runtime_id: str) -> TextIO | None:
    """`SANDBOX_RECORD_STREAM=<dir>`: keep the CLI's raw stdout as `<dir>/<runtime>-<time>.jsonl`, for
    bug reports and new test fixtures (tests/fixtures/streams/ were captured this way)."""
    if not directory:
        return None
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    return (target / f"{runtime_id}-{now_ms()}.jsonl").open("w", encoding="utf-8")
