"""The agent loop: runs of Experts within one job, step by step, emitting Perstack's events.

A *step* is one generation plus its tool calls. Step numbers are job-wide (a shared counter), so
`maxSteps` bounds the whole job, delegates included, and checkpoints of all runs interleave by step.

Per step: `startGeneration` → (streaming reasoning) → a response. No tool calls: `completeRun` with the
text. Otherwise, in Perstack's order: ordinary tools (`callTools` → `resolveToolResults`), then delegates
(`callDelegate` → `stopRunByDelegate`, each delegate runs as its own run in this job, concurrently, then
`resolveToolResults`), then interactive tools (`callInteractiveTool` → `stopRunByInteractiveTool`, the run
ends awaiting a person). The tool message is emitted with `finishToolCall`, and the step closes with
`continueToNextStep` (or `stopRunByExceededMaxSteps`). A successful `attemptCompletion` instead leads to
one last generation streamed as the run result and `completeRun`.

Each generation's usage is reported by exactly one event (`callTools`, `callDelegate`,
`callInteractiveTool` or `completeRun`), which is what the job store sums into job.json.

Consistency on interruption: `self.cp` is always the checkpoint at the start of the current step (messages
complete, no dangling tool calls). A cancelled run (signal) stops with `stopRunByError` carrying that
checkpoint, so `--continue` resumes from a clean state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sandbox._errors import UserError
from sandbox.agent._generate import GenerationError, Generator
from sandbox.agent.skills import SkillSet
from sandbox.agent.skills.builtin import BASE_SKILL_NAME
from sandbox.agent.skills.delegate import DelegateSkill
from sandbox.events import (
    AttemptCompletion,
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    Checkpoint,
    CheckpointError,
    CompleteRun,
    ContinueToNextStep,
    DelegatedBy,
    DelegationTarget,
    EventBase,
    ExpertMessage,
    ExpertRef,
    FinishToolCall,
    InteractiveToolCallResult,
    Message,
    ResolveToolResults,
    ResumeToolCalls,
    RunEventBase,
    StartGeneration,
    StartRun,
    Step,
    StopRunByDelegate,
    StopRunByError,
    StopRunByExceededMaxSteps,
    StopRunByInteractiveTool,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolMessage,
    ToolResult,
    ToolResultPart,
    Usage,
    UserMessage,
    create_id,
    now_ms,
)

if TYPE_CHECKING:
    from sandbox.agent._job import Job
    from sandbox.config import Expert

__all__ = ["Outcome", "Run", "expert_ref"]

OutcomeKind = Literal["completed", "interactive", "max_steps", "error", "interrupted"]


@dataclass
class Outcome:
    kind: OutcomeKind
    checkpoint: Checkpoint
    text: str = ""
    error: CheckpointError | None = None


@dataclass
class _Results:
    """Tool results of one step by tool-call id, with their error flags."""

    by_id: dict[str, ToolResult] = field(default_factory=dict)
    errors: set[str] = field(default_factory=set)

    def add(self, result: ToolResult, *, is_error: bool) -> None:
        self.by_id[result.id] = result
        if is_error:
            self.errors.add(result.id)


def expert_ref(key: str, expert: Expert) -> ExpertRef:
    name = key.rsplit("@", 1)[0] if key.count("@") > (1 if key.startswith("@") else 0) else key
    return ExpertRef(key=key, name=name, version=expert.version)


def _text_of(message: ExpertMessage) -> str:
    return "".join(p.text for p in message.contents if isinstance(p, TextPart))


class Run:
    """One run of one Expert: from a starting checkpoint to a terminal event."""

    def __init__(
        self,
        job: Job,
        *,
        run_id: str,
        expert_key: str,
        expert: Expert,
        skills: SkillSet,
        checkpoint: Checkpoint,
        input_messages: Sequence[Message],
        resume: tuple[ExpertMessage, list[ToolCall], _Results] | None = None,
    ) -> None:
        self.job = job
        self.run_id = run_id
        self.expert_key = expert_key
        self.expert = expert
        self.skills = skills
        self.initial = checkpoint
        self.input_messages = list(input_messages)
        self.cp = checkpoint.model_copy(
            update={
                "messages": [*checkpoint.messages, *input_messages],
                "status": "proceeding",
                "delegate_to": None,
                "pending_tool_calls": None,
                "partial_tool_results": None,
                "error": None,
            }
        )
        self._resume = resume
        self._step_started = now_ms()
        self._step_inputs: list[Message] = list(input_messages)
        self.generator = Generator(job.model, job.model_settings, job.retry_policy, self._emit_streaming)

    # ------------------------------------------------------------------------------------------ events

    def _base(self) -> dict[str, Any]:
        return {
            "expert_key": self.expert_key,
            "job_id": self.job.job_id,
            "run_id": self.run_id,
            "step_number": self.cp.step_number,
        }

    def emit(self, cls: type[RunEventBase], **payload: Any) -> None:
        self.job.emit(cls(**self._base(), **payload))

    def _emit_streaming(self, cls: type[EventBase], payload: dict[str, Any]) -> None:
        self.job.emit(cls(**self._base(), **payload))

    def _step(self, new_messages: Sequence[Message], usage: Usage, **extra: Any) -> Step:
        return Step(
            step_number=self.cp.step_number,
            input_messages=self._step_inputs or None,
            new_messages=list(new_messages),
            usage=usage,
            started_at=self._step_started,
            finished_at=now_ms(),
            **extra,
        )

    # ------------------------------------------------------------------------------------------ main

    async def execute(self) -> Outcome:
        self.emit(StartRun, initial_checkpoint=self.initial, input_messages=self.input_messages)
        try:
            return await self._steps()
        except asyncio.CancelledError:
            self._stop_interrupted()
            raise

    def _stop_interrupted(self) -> None:
        error = CheckpointError(name="Interrupted", message=self.job.interrupt_reason(), is_retryable=True)
        cp = self.cp.model_copy(update={"id": create_id(), "status": "stoppedByError", "error": error})
        self.emit(StopRunByError, checkpoint=cp, step=self._step([], Usage()), error=error)

    async def _steps(self) -> Outcome:
        while True:
            if self._resume is not None:
                expert_msg, calls, results = self._resume
                self._resume = None
                self.emit(
                    ResumeToolCalls,
                    pending_tool_calls=calls,
                    partial_tool_results=list(results.by_id.values()),
                )
                usage = Usage()
                usage_reported = True
            else:
                tools = self.skills.tool_specs()
                self.emit(StartGeneration, messages=self.cp.messages)
                try:
                    response, usage = await self.generator.generate(self.cp.messages, tools)
                except GenerationError as failed:
                    return self._stop_error(failed.error)
                expert_msg = _expert_message(response)
                calls = self._tool_calls(expert_msg)
                results = _Results()
                usage_reported = False
                if not calls:
                    return self._complete(expert_msg, _text_of(expert_msg), usage, [expert_msg])
            outcome = await self._process_calls(expert_msg, calls, results, usage, usage_reported)
            if outcome is not None:
                return outcome

    # ------------------------------------------------------------------------------------------ tools

    def _tool_calls(self, message: ExpertMessage) -> list[ToolCall]:
        calls = []
        for part in message.contents:
            if isinstance(part, ToolCallPart):
                owner = self.skills.owner(part.tool_name)
                args = part.args if isinstance(part.args, dict) else {}
                calls.append(
                    ToolCall(
                        id=part.tool_call_id,
                        skill_name=owner.name if owner else "unknown",
                        tool_name=part.tool_name,
                        args=args,
                    )
                )
        return calls

    async def _process_calls(
        self,
        expert_msg: ExpertMessage,
        calls: list[ToolCall],
        results: _Results,
        usage: Usage,
        usage_reported: bool,
    ) -> Outcome | None:
        kinds = {c.id: self._kind(c) for c in calls}
        regular = [c for c in calls if kinds[c.id] in ("tool", "unknown") and c.id not in results.by_id]
        delegates = [c for c in calls if kinds[c.id] == "delegate" and c.id not in results.by_id]
        interactive = [c for c in calls if kinds[c.id] == "interactive" and c.id not in results.by_id]
        completion: ToolResult | None = None

        if regular:
            self.emit(CallTools, new_message=expert_msg, tool_calls=regular, usage=usage)
            usage_reported = True
            outputs = await asyncio.gather(*(self._call_tool(c) for c in regular))
            resolved = []
            for call, (result, is_error) in zip(regular, outputs, strict=True):
                results.add(result, is_error=is_error)
                resolved.append(result)
                if (
                    call.tool_name == "attemptCompletion"
                    and call.skill_name == BASE_SKILL_NAME
                    and not is_error
                ):
                    completion = result
            self.emit(ResolveToolResults, tool_results=resolved)

        if delegates:
            self.emit(
                CallDelegate,
                new_message=expert_msg,
                tool_calls=delegates,
                usage=Usage() if usage_reported else usage,
            )
            usage_reported = True
            outcome = await self._delegate(expert_msg, calls, delegates, results, usage)
            if outcome is not None:
                return outcome

        if interactive:
            return self._stop_interactive(
                expert_msg=expert_msg,
                calls=calls,
                interactive=interactive,
                results=results,
                usage=usage,
                usage_reported=usage_reported,
            )

        tool_message = _tool_message(expert_msg, results)
        self.emit(FinishToolCall, new_messages=[tool_message])
        messages = [*self.cp.messages, expert_msg, tool_message]
        step_usage = usage
        new_usage = self.cp.usage + usage
        if completion is not None:
            self.emit(AttemptCompletion, tool_result=completion)
            self.cp = self.cp.model_copy(update={"messages": messages, "usage": new_usage})
            self._step_inputs = [*self._step_inputs, expert_msg, tool_message]
            return await self._generate_run_result()
        done = self.cp.model_copy(update={"messages": messages, "usage": new_usage, "status": "proceeding"})
        step = self._step(
            [expert_msg, tool_message],
            step_usage,
            tool_calls=calls,
            tool_results=list(results.by_id.values()),
        )
        next_number = self.job.take_step()
        if next_number is None:
            stopped = done.model_copy(update={"status": "stoppedByExceededMaxSteps"})
            self.emit(StopRunByExceededMaxSteps, checkpoint=stopped, step=step)
            return Outcome("max_steps", stopped)
        nxt = done.model_copy(update={"id": create_id(), "step_number": next_number})
        self.emit(ContinueToNextStep, checkpoint=done, step=step, next_checkpoint=nxt)
        self.cp = nxt
        self._step_started = now_ms()
        self._step_inputs = []
        return None

    def _kind(self, call: ToolCall) -> str:
        owner = self.skills.owner(call.tool_name)
        if owner is None:
            return "unknown"
        if owner.kind == "delegate":
            return "delegate"
        if owner.kind == "interactive":
            return "interactive"
        return "tool"

    async def _call_tool(self, call: ToolCall) -> tuple[ToolResult, bool]:
        owner = self.skills.owner(call.tool_name)
        if owner is None:
            names = ", ".join(sorted(t.name for t in self.skills.tool_specs()))
            output_parts: list[Any] = [
                TextPart(text=f"Tool {call.tool_name} not found. Available tools: {names}")
            ]
            return ToolResult(
                id=call.id, skill_name=call.skill_name, tool_name=call.tool_name, result=output_parts
            ), True
        try:
            output = await owner.call(call.tool_name, call.args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a skill bug must not end the run: the model sees the failure
            output_parts = [TextPart(text=f"{type(exc).__name__}: {exc}")]
            return ToolResult(
                id=call.id, skill_name=owner.name, tool_name=call.tool_name, result=output_parts
            ), True
        parts: list[Any] = list(output.parts) or [TextPart(text="")]
        return ToolResult(
            id=call.id, skill_name=owner.name, tool_name=call.tool_name, result=parts
        ), output.is_error

    # ------------------------------------------------------------------------------------------ delegation

    async def _delegate(
        self,
        expert_msg: ExpertMessage,
        calls: list[ToolCall],
        delegates: list[ToolCall],
        results: _Results,
        usage: Usage,
    ) -> Outcome | None:
        targets = []
        for call in delegates:
            owner = self.skills.owner(call.tool_name)
            assert isinstance(owner, DelegateSkill)
            target = self.job.config.experts[owner.expert_key]
            targets.append(
                DelegationTarget(
                    expert=expert_ref(owner.expert_key, target),
                    tool_call_id=call.id,
                    tool_name=call.tool_name,
                    query=str(call.args.get("query", "")),
                )
            )
        stop_cp = self.cp.model_copy(
            update={
                # A fresh id: this step's checkpoint id is stored again when the step continues.
                "id": create_id(),
                "status": "stoppedByDelegate",
                "messages": [*self.cp.messages, expert_msg],
                "delegate_to": targets,
                "pending_tool_calls": delegates,
                "partial_tool_results": list(results.by_id.values()) or None,
                "usage": self.cp.usage + usage,
            }
        )
        self.emit(
            StopRunByDelegate, checkpoint=stop_cp, step=self._step([expert_msg], usage, tool_calls=calls)
        )
        delegated_by = DelegatedBy(
            expert=expert_ref(self.expert_key, self.expert),
            tool_call_id="",
            tool_name="",
            checkpoint_id=stop_cp.id,
            run_id=self.run_id,
        )
        outcomes = await asyncio.gather(
            *(
                self.job.run_delegate(
                    target.expert.key,
                    target.query,
                    delegated_by.model_copy(update={"tool_call_id": call.id, "tool_name": call.tool_name}),
                )
                for call, target in zip(delegates, targets, strict=True)
            )
        )
        resolved = []
        exceeded = False
        for call, outcome in zip(delegates, outcomes, strict=True):
            if outcome.kind == "completed":
                text, is_error = outcome.text, False
            elif outcome.kind == "max_steps":
                exceeded = True
                text, is_error = "The delegate stopped: the job exceeded its maximum number of steps.", True
            else:
                message = outcome.error.message if outcome.error else outcome.kind
                text, is_error = f"The delegate failed: {message}", True
            result = ToolResult(
                id=call.id, skill_name=call.skill_name, tool_name=call.tool_name, result=[TextPart(text=text)]
            )
            results.add(result, is_error=is_error)
            resolved.append(result)
        self.emit(ResolveToolResults, tool_results=resolved)
        if exceeded:
            tool_message = _tool_message(expert_msg, results)
            stopped = self.cp.model_copy(
                update={
                    "status": "stoppedByExceededMaxSteps",
                    "messages": [*self.cp.messages, expert_msg, tool_message],
                    "usage": self.cp.usage + usage,
                }
            )
            self.emit(
                StopRunByExceededMaxSteps,
                checkpoint=stopped,
                step=self._step([expert_msg, tool_message], usage),
            )
            return Outcome("max_steps", stopped)
        return None

    # ------------------------------------------------------------------------------------------ endings

    def _stop_interactive(
        self,
        *,
        expert_msg: ExpertMessage,
        calls: list[ToolCall],
        interactive: list[ToolCall],
        results: _Results,
        usage: Usage,
        usage_reported: bool,
    ) -> Outcome:
        self.emit(
            CallInteractiveTool,
            new_message=expert_msg,
            tool_call=interactive[0],
            usage=Usage() if usage_reported else usage,
        )
        stopped = self.cp.model_copy(
            update={
                "status": "stoppedByInteractiveTool",
                "messages": [*self.cp.messages, expert_msg],
                "pending_tool_calls": interactive,
                "partial_tool_results": list(results.by_id.values()) or None,
                "usage": self.cp.usage + usage,
            }
        )
        step = self._step(
            [expert_msg],
            usage,
            tool_calls=calls,
            pending_tool_calls=interactive,
            partial_tool_results=list(results.by_id.values()) or None,
        )
        self.emit(StopRunByInteractiveTool, checkpoint=stopped, step=step)
        return Outcome("interactive", stopped)

    def _complete(
        self, final: ExpertMessage, text: str, usage: Usage, new_messages: list[Message]
    ) -> Outcome:
        done = self.cp.model_copy(
            update={
                "status": "completed",
                "messages": [*self.cp.messages, final],
                "usage": self.cp.usage + usage,
            }
        )
        self.emit(CompleteRun, checkpoint=done, step=self._step(new_messages, usage), text=text, usage=usage)
        return Outcome("completed", done, text=text)

    async def _generate_run_result(self) -> Outcome:
        """After a successful attemptCompletion: one generation, streamed, becomes the run's result."""
        self.emit(StartGeneration, messages=self.cp.messages)
        try:
            response, usage = await self.generator.generate(
                self.cp.messages, self.skills.tool_specs(), run_result=True
            )
        except GenerationError as failed:
            return self._stop_error(failed.error)
        message = _expert_message(response)
        text = _text_of(message)
        final = ExpertMessage(contents=[TextPart(text=text)])
        return self._complete(final, text, usage, [*self._step_inputs, final])

    def _stop_error(self, error: CheckpointError) -> Outcome:
        stopped = self.cp.model_copy(update={"status": "stoppedByError", "error": error})
        self.emit(StopRunByError, checkpoint=stopped, step=self._step([], Usage()), error=error)
        return Outcome("error", stopped, error=error)


def _expert_message(response: Any) -> ExpertMessage:
    from sandbox.agent._messages import expert_message_from_response

    return expert_message_from_response(response)


def _tool_message(expert_msg: ExpertMessage, results: _Results) -> ToolMessage:
    parts = []
    for part in expert_msg.contents:
        if not isinstance(part, ToolCallPart):
            continue
        result = results.by_id.get(part.tool_call_id)
        contents: list[Any] = (
            [p for p in result.result if p.type in ("textPart", "imageInlinePart", "fileInlinePart")]
            if result
            else [TextPart(text="No result.")]
        )
        parts.append(
            ToolResultPart(
                tool_call_id=part.tool_call_id,
                tool_name=part.tool_name,
                contents=contents,
                is_error=True if (result is None or part.tool_call_id in results.errors) else None,
            )
        )
    return ToolMessage(contents=parts)


# --------------------------------------------------------------------------------------------- resume


def parse_interactive_answer(raw: str, checkpoint: Checkpoint) -> InteractiveToolCallResult:
    """`-i` input: JSON `{toolCallId, toolName, skillName, text}` or plain text for the first pending call."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and {"toolCallId", "toolName", "text"} <= data.keys():
            return InteractiveToolCallResult.model_validate(
                {
                    "skillName": data.get("skillName", ""),
                    **{k: data[k] for k in ("toolCallId", "toolName", "text")},
                }
            )
    pending = checkpoint.pending_tool_calls or []
    last = checkpoint.messages[-1] if checkpoint.messages else None
    if not isinstance(last, ExpertMessage):
        raise UserError("Cannot resume: the checkpoint does not end with the expert's tool call")
    first = next(
        (
            p
            for p in last.contents
            if isinstance(p, ToolCallPart) and any(c.id == p.tool_call_id for c in pending)
        ),
        None,
    )
    if first is None:
        raise UserError("Cannot resume: the checkpoint has no pending interactive tool call")
    skill = next(c.skill_name for c in pending if c.id == first.tool_call_id)
    return InteractiveToolCallResult(
        tool_call_id=first.tool_call_id, tool_name=first.tool_name, skill_name=skill, text=raw
    )


def resume_state(
    checkpoint: Checkpoint, answer: InteractiveToolCallResult | None
) -> tuple[list[Message], tuple[ExpertMessage, list[ToolCall], _Results]]:
    """Messages to start from and the tool phase to re-enter, for a checkpoint that stopped mid-tools."""
    last = checkpoint.messages[-1] if checkpoint.messages else None
    if not isinstance(last, ExpertMessage):
        raise UserError("Cannot resume: the checkpoint does not end with the expert's tool call")
    pending = list(checkpoint.pending_tool_calls or [])
    results = _Results()
    for r in checkpoint.partial_tool_results or []:
        results.add(r, is_error=False)
    if answer is not None:
        match = next((c for c in pending if c.id == answer.tool_call_id), None)
        if match is None:
            raise UserError(f"No pending tool call {answer.tool_call_id} in the checkpoint")
        results.add(
            ToolResult(
                id=match.id,
                skill_name=answer.skill_name or match.skill_name,
                tool_name=match.tool_name,
                result=[TextPart(text=answer.text)],
            ),
            is_error=False,
        )
    calls = [
        ToolCall(
            id=p.tool_call_id,
            skill_name=_skill_of(p, pending, results),
            tool_name=p.tool_name,
            args=p.args or {},
        )
        for p in last.contents
        if isinstance(p, ToolCallPart)
    ]
    return list(checkpoint.messages[:-1]), (last, calls, results)


def _skill_of(part: ToolCallPart, pending: list[ToolCall], results: _Results) -> str:
    for call in pending:
        if call.id == part.tool_call_id:
            return call.skill_name
    result = results.by_id.get(part.tool_call_id)
    return result.skill_name if result else "unknown"


def new_user_message(text: str) -> UserMessage:
    return UserMessage(contents=[TextPart(text=text)])
