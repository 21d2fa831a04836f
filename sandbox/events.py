"""Perstack's events, checkpoints and job records as pydantic models: the one source of truth.

Why one module: the native runtime emits these, the docker executor re-reads them from a container's stdout
and stores them on the host, and the CLI adapters synthesise them. All three must produce byte-compatible
JSON with Perstack's own `perstack run` output (shared/reference/perstack.md §3), so every shape lives here.

Conventions:

* Python attributes are snake_case; JSON keys are Perstack's camelCase (alias generator). Both names are
  accepted when validating; serialising always uses the camelCase names.
* Perstack serialises with `JSON.stringify`, which drops `undefined`. Here an *optional field left at None is
  omitted*, and nothing else is: `None` inside free-form values (`args`, `metadata`) is kept as `null`.
* Unknown keys are kept (`extra="allow"`) so an event read from another producer round-trips losslessly.
* Model schemas are built lazily (`defer_build`) so importing this module stays cheap for `sandbox --help`.
* Each terminal event class declares what it means for the host (`outcome`: exit code, job status, ...), and
  every union and type set below is derived from one list of classes per kind. Tables kept elsewhere once
  disagreed (`stopRunByDelegate` taken for the end of a run stopped every delegating Expert), so there are
  none: the executor, the job store, the native runtime and `compare` all read `outcome_of()`.

The public surface: the models, the `Event`/`RunEvent`/`RuntimeEvent` unions, `parse_event()`,
`event_to_json()`, `outcome_of()`, `JsonlWriter`, `create_id()` and `now_ms()`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import IO, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from sandbox._defaults import DEFAULT_PERSTACK_API_BASE_URL

__all__ = [
    "EXIT_CODE_BY_TERMINAL",
    "RUNTIME_EVENT_TYPES",
    "RUN_EVENT_TYPES",
    "STREAMING_EVENT_TYPES",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_OUTCOMES",
    "AttemptCompletion",
    "CallDelegate",
    "CallInteractiveTool",
    "CallTools",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStatus",
    "CompleteRun",
    "CompleteStreamingReasoning",
    "CompleteStreamingRunResult",
    "ContinueToNextStep",
    "DelegatedBy",
    "DelegationTarget",
    "DockerBuildProgress",
    "DockerContainerStatus",
    "Event",
    "EventBase",
    "ExpertMessage",
    "ExpertRef",
    "FileBinaryPart",
    "FileInlinePart",
    "FileUrlPart",
    "FinishAllToolCalls",
    "FinishToolCall",
    "ImageBinaryPart",
    "ImageInlinePart",
    "ImageUrlPart",
    "InitializeRuntime",
    "InstructionMessage",
    "InteractiveToolCallRef",
    "InteractiveToolCallResult",
    "Job",
    "JobStatus",
    "JsonlWriter",
    "Message",
    "MessagePart",
    "ProxyAccess",
    "ResolveToolResults",
    "ResumeToolCalls",
    "Retry",
    "RunEvent",
    "RunEventBase",
    "RunInput",
    "RunOutcome",
    "RunSetting",
    "RuntimeEvent",
    "RuntimeEventBase",
    "ServerInfo",
    "SkillConnected",
    "SkillDisconnected",
    "SkillStarting",
    "SkillStderr",
    "StartGeneration",
    "StartRun",
    "StartStreamingReasoning",
    "StartStreamingRunResult",
    "Step",
    "StopRunByDelegate",
    "StopRunByError",
    "StopRunByExceededMaxSteps",
    "StopRunByInteractiveTool",
    "StreamReasoning",
    "StreamRunResult",
    "TextPart",
    "ThinkingPart",
    "ToolCall",
    "ToolCallPart",
    "ToolMessage",
    "ToolResult",
    "ToolResultPart",
    "Usage",
    "UserMessage",
    "create_id",
    "event_adapter",
    "event_to_json",
    "is_run_event",
    "now_ms",
    "outcome_of",
    "outcome_of_checkpoint",
    "parse_event",
]

# --------------------------------------------------------------------------------------------- ids and time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def create_id(length: int = 24) -> str:
    """A cuid2-shaped id: a lowercase letter, then base36, 24 characters by default.

    Why not the `cuid2` package: ids only need to be unique and look like Perstack's (tools parse them as
    opaque strings); 23 base36 characters from `secrets` carry ~119 bits of randomness, more than enough.
    """
    return secrets.choice(_LETTERS) + "".join(secrets.choice(_ALPHABET) for _ in range(length - 1))


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every Perstack timestamp (`Date.now()`)."""
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------------------------- base model


class _Model(BaseModel):
    """camelCase JSON, optional-None omitted, unknown keys kept, schema built on first use."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        frozen=True,
        defer_build=True,
    )

    @model_serializer(mode="wrap")
    def _omit_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Drop optional fields whose value is None, like `JSON.stringify` drops `undefined`."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        for name in _optional_names(type(self)):
            if getattr(self, name, None) is None:
                field = type(self).model_fields[name]
                data.pop(field.alias or name, None)
                data.pop(name, None)
        return data


@cache
def _optional_names(cls: type[BaseModel]) -> tuple[str, ...]:
    return tuple(name for name, f in cls.model_fields.items() if not f.is_required() and f.default is None)


# --------------------------------------------------------------------------------------------- parts


class _Part(_Model):
    type: str
    id: str = Field(default_factory=create_id)


class TextPart(_Part):
    type: Literal["textPart"] = "textPart"
    text: str


class ImageUrlPart(_Part):
    type: Literal["imageUrlPart"] = "imageUrlPart"
    url: str
    mime_type: str


class ImageInlinePart(_Part):
    type: Literal["imageInlinePart"] = "imageInlinePart"
    encoded_data: str
    mime_type: str


class ImageBinaryPart(_Part):
    type: Literal["imageBinaryPart"] = "imageBinaryPart"
    data: str
    mime_type: str


class FileUrlPart(_Part):
    type: Literal["fileUrlPart"] = "fileUrlPart"
    url: str
    mime_type: str


class FileInlinePart(_Part):
    type: Literal["fileInlinePart"] = "fileInlinePart"
    encoded_data: str
    mime_type: str


class FileBinaryPart(_Part):
    type: Literal["fileBinaryPart"] = "fileBinaryPart"
    data: str
    mime_type: str


class ToolCallPart(_Part):
    type: Literal["toolCallPart"] = "toolCallPart"
    tool_call_id: str
    tool_name: str
    args: Any = None


ToolResultContent = Annotated[TextPart | ImageInlinePart | FileInlinePart, Field(discriminator="type")]


class ToolResultPart(_Part):
    type: Literal["toolResultPart"] = "toolResultPart"
    tool_call_id: str
    tool_name: str
    contents: list[ToolResultContent]
    is_error: bool | None = None


class ThinkingPart(_Part):
    type: Literal["thinkingPart"] = "thinkingPart"
    thinking: str
    signature: str | None = None


MessagePart = Annotated[
    TextPart
    | ImageUrlPart
    | ImageInlinePart
    | ImageBinaryPart
    | FileUrlPart
    | FileInlinePart
    | FileBinaryPart
    | ToolCallPart
    | ToolResultPart
    | ThinkingPart,
    Field(discriminator="type"),
]
UserContent = Annotated[
    TextPart
    | ImageUrlPart
    | ImageInlinePart
    | ImageBinaryPart
    | FileUrlPart
    | FileInlinePart
    | FileBinaryPart,
    Field(discriminator="type"),
]
ExpertContent = Annotated[TextPart | ToolCallPart | ThinkingPart, Field(discriminator="type")]

# --------------------------------------------------------------------------------------------- messages


class _Message(_Model):
    type: str
    id: str = Field(default_factory=create_id)


class InstructionMessage(_Message):
    type: Literal["instructionMessage"] = "instructionMessage"
    contents: list[TextPart]
    cache: bool | None = None


class UserMessage(_Message):
    type: Literal["userMessage"] = "userMessage"
    contents: list[UserContent]
    cache: bool | None = None


class ExpertMessage(_Message):
    type: Literal["expertMessage"] = "expertMessage"
    contents: list[ExpertContent]
    cache: bool | None = None


class ToolMessage(_Message):
    type: Literal["toolMessage"] = "toolMessage"
    contents: list[ToolResultPart]
    cache: bool | None = None


Message = Annotated[
    InstructionMessage | UserMessage | ExpertMessage | ToolMessage, Field(discriminator="type")
]

# --------------------------------------------------------------------------------------------- core shapes


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
        )


class ToolCall(_Model):
    id: str
    skill_name: str
    tool_name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolResult(_Model):
    """`result` holds message parts; delegation results use skillName `delegate/<expertKey>`."""

    id: str
    skill_name: str
    tool_name: str
    result: list[MessagePart]


class ExpertRef(_Model):
    key: str
    name: str
    version: str


class DelegationTarget(_Model):
    expert: ExpertRef
    tool_call_id: str
    tool_name: str
    query: str


class DelegatedBy(_Model):
    expert: ExpertRef
    tool_call_id: str
    tool_name: str
    checkpoint_id: str
    run_id: str


class CheckpointError(_Model):
    name: str
    message: str
    status_code: int | None = None
    is_retryable: bool = False


CheckpointStatus = Literal[
    "init",
    "proceeding",
    "completed",
    "stoppedByInteractiveTool",
    "stoppedByDelegate",
    "stoppedByExceededMaxSteps",
    "stoppedByError",
]


class Checkpoint(_Model):
    id: str
    job_id: str
    run_id: str
    status: CheckpointStatus
    step_number: int
    messages: list[Message]
    expert: ExpertRef
    delegate_to: list[DelegationTarget] | None = None
    delegated_by: DelegatedBy | None = None
    usage: Usage = Field(default_factory=Usage)
    context_window: int | None = None
    context_window_usage: float | None = None
    pending_tool_calls: list[ToolCall] | None = None
    partial_tool_results: list[ToolResult] | None = None
    metadata: dict[str, Any] | None = None
    error: CheckpointError | None = None
    retry_count: int | None = None


class Step(_Model):
    step_number: int
    input_messages: list[Message] | None = None
    new_messages: list[Message] = Field(default_factory=list)
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    pending_tool_calls: list[ToolCall] | None = None
    partial_tool_results: list[ToolResult] | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: int
    finished_at: int | None = None


JobStatus = Literal["running", "completed", "stoppedByMaxSteps", "stoppedByInteractiveTool", "stoppedByError"]


class Job(_Model):
    id: str
    status: JobStatus
    coordinator_expert_key: str
    total_steps: int = 0
    max_steps: int | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: int
    finished_at: int | None = None


class InteractiveToolCallResult(_Model):
    tool_call_id: str
    tool_name: str
    skill_name: str
    text: str


class RunInput(_Model):
    text: str | None = None
    interactive_tool_call_result: InteractiveToolCallResult | None = None


class RunSetting(_Model):
    """What one run was started with. Stored redacted (see `sandbox.jobs`): no live secret on disk."""

    model: str
    provider_config: dict[str, Any]
    job_id: str
    run_id: str
    expert_key: str
    input: RunInput = Field(default_factory=RunInput)
    experts: dict[str, Any] = Field(default_factory=dict)
    reasoning_budget: str | int | None = None
    max_steps: int | None = None
    max_retries: int
    timeout: int
    started_at: int
    updated_at: int
    perstack_api_base_url: str = DEFAULT_PERSTACK_API_BASE_URL
    perstack_api_key: str | None = None
    perstack_base_skill_command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    proxy_url: str | None = None
    verbose: bool | None = None
    temperature: float | None = None


# --------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class RunOutcome:
    """What a run's terminal event means outside the run, declared once on the event class (`outcome`).

    `exit_code`: the process's, when the job's coordinator ends with this event (every runtime). `job_status`:
    job.json's. `checkpoint_status`: the status of the checkpoint the event carries. `kind`: the native
    runtime's name for this ending (`sandbox.agent`'s `Outcome.kind`). `label`: how `sandbox compare`
    reports it.
    """

    exit_code: int
    job_status: JobStatus
    checkpoint_status: CheckpointStatus
    kind: str
    label: str


class EventBase(_Model):
    type: str
    id: str = Field(default_factory=create_id)


class RunEventBase(EventBase):
    """Events of one Expert's run: they carry `expertKey` and `stepNumber` and are stored with the job.

    `outcome` is None except on the events that end a run for the host (see `RunOutcome`).
    """

    outcome: ClassVar[RunOutcome | None] = None

    expert_key: str
    timestamp: int = Field(default_factory=now_ms)
    job_id: str
    run_id: str
    step_number: int


class RuntimeEventBase(EventBase):
    """Infrastructure events (skills, docker, proxy): no expert, no step, never stored."""

    timestamp: int = Field(default_factory=now_ms)
    job_id: str
    run_id: str


# ExpertStateEvent


class StartRun(RunEventBase):
    type: Literal["startRun"] = "startRun"
    initial_checkpoint: Checkpoint
    input_messages: list[Message]


class StartGeneration(RunEventBase):
    type: Literal["startGeneration"] = "startGeneration"
    messages: list[Message]


class Retry(RunEventBase):
    type: Literal["retry"] = "retry"
    reason: str
    new_messages: list[Message] = Field(default_factory=list)
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    usage: Usage = Field(default_factory=Usage)


class CallTools(RunEventBase):
    type: Literal["callTools"] = "callTools"
    new_message: ExpertMessage
    tool_calls: list[ToolCall]
    usage: Usage


class CallInteractiveTool(RunEventBase):
    type: Literal["callInteractiveTool"] = "callInteractiveTool"
    new_message: ExpertMessage
    tool_call: ToolCall
    usage: Usage


class CallDelegate(RunEventBase):
    type: Literal["callDelegate"] = "callDelegate"
    new_message: ExpertMessage
    tool_calls: list[ToolCall]
    usage: Usage


class ResolveToolResults(RunEventBase):
    type: Literal["resolveToolResults"] = "resolveToolResults"
    tool_results: list[ToolResult]


class AttemptCompletion(RunEventBase):
    type: Literal["attemptCompletion"] = "attemptCompletion"
    tool_result: ToolResult


class FinishToolCall(RunEventBase):
    type: Literal["finishToolCall"] = "finishToolCall"
    new_messages: list[Message]


class ResumeToolCalls(RunEventBase):
    type: Literal["resumeToolCalls"] = "resumeToolCalls"
    pending_tool_calls: list[ToolCall]
    partial_tool_results: list[ToolResult]


class FinishAllToolCalls(RunEventBase):
    type: Literal["finishAllToolCalls"] = "finishAllToolCalls"
    new_messages: list[Message]


class ContinueToNextStep(RunEventBase):
    type: Literal["continueToNextStep"] = "continueToNextStep"
    checkpoint: Checkpoint
    step: Step
    next_checkpoint: Checkpoint


class StopRunByInteractiveTool(RunEventBase):
    type: Literal["stopRunByInteractiveTool"] = "stopRunByInteractiveTool"
    outcome: ClassVar[RunOutcome | None] = RunOutcome(
        0, "stoppedByInteractiveTool", "stoppedByInteractiveTool", "interactive", "interactive stop"
    )
    checkpoint: Checkpoint
    step: Step


class StopRunByDelegate(RunEventBase):
    type: Literal["stopRunByDelegate"] = "stopRunByDelegate"
    # Not the end of a run for the host: the runtime runs the delegates in the same process and the
    # delegating run goes on with their results (one of the events with an outcome ends it). Treating it as
    # terminal stopped every delegating Expert in the sandbox at its first delegation.
    outcome: ClassVar[RunOutcome | None] = None
    checkpoint: Checkpoint
    step: Step


class StopRunByExceededMaxSteps(RunEventBase):
    type: Literal["stopRunByExceededMaxSteps"] = "stopRunByExceededMaxSteps"
    outcome: ClassVar[RunOutcome | None] = RunOutcome(
        1, "stoppedByMaxSteps", "stoppedByExceededMaxSteps", "max_steps", "max steps"
    )
    checkpoint: Checkpoint
    step: Step


class StopRunByError(RunEventBase):
    type: Literal["stopRunByError"] = "stopRunByError"
    outcome: ClassVar[RunOutcome | None] = RunOutcome(1, "stoppedByError", "stoppedByError", "error", "error")
    checkpoint: Checkpoint
    step: Step
    error: CheckpointError


class CompleteRun(RunEventBase):
    type: Literal["completeRun"] = "completeRun"
    outcome: ClassVar[RunOutcome | None] = RunOutcome(0, "completed", "completed", "completed", "completed")
    checkpoint: Checkpoint
    step: Step
    text: str
    usage: Usage


# StreamingEvent


class StartStreamingReasoning(RunEventBase):
    type: Literal["startStreamingReasoning"] = "startStreamingReasoning"


class StreamReasoning(RunEventBase):
    type: Literal["streamReasoning"] = "streamReasoning"
    delta: str


class CompleteStreamingReasoning(RunEventBase):
    type: Literal["completeStreamingReasoning"] = "completeStreamingReasoning"
    text: str


class StartStreamingRunResult(RunEventBase):
    type: Literal["startStreamingRunResult"] = "startStreamingRunResult"


class StreamRunResult(RunEventBase):
    type: Literal["streamRunResult"] = "streamRunResult"
    delta: str


class CompleteStreamingRunResult(RunEventBase):
    type: Literal["completeStreamingRunResult"] = "completeStreamingRunResult"
    text: str


# RuntimeEvent


class InteractiveToolCallRef(_Model):
    tool_name: str
    tool_call_id: str
    text: str


class InitializeRuntime(RuntimeEventBase):
    type: Literal["initializeRuntime"] = "initializeRuntime"
    runtime_version: str
    runtime: str | None = None
    expert_name: str
    experts: list[str]
    model: str
    temperature: float | None = None
    max_steps: int | None = None
    max_retries: int
    timeout: int
    query: str | None = None
    interactive_tool_call: InteractiveToolCallRef | None = None


class SkillStarting(RuntimeEventBase):
    type: Literal["skillStarting"] = "skillStarting"
    skill_name: str
    command: str
    args: list[str] = Field(default_factory=list)


class ServerInfo(_Model):
    name: str
    version: str


class SkillConnected(RuntimeEventBase):
    type: Literal["skillConnected"] = "skillConnected"
    skill_name: str
    server_info: ServerInfo | None = None
    connect_duration_ms: float | None = None
    total_duration_ms: float | None = None
    spawn_duration_ms: float | None = None
    handshake_duration_ms: float | None = None
    tool_discovery_duration_ms: float | None = None


class SkillStderr(RuntimeEventBase):
    type: Literal["skillStderr"] = "skillStderr"
    skill_name: str
    message: str


class SkillDisconnected(RuntimeEventBase):
    type: Literal["skillDisconnected"] = "skillDisconnected"
    skill_name: str


class DockerBuildProgress(RuntimeEventBase):
    type: Literal["dockerBuildProgress"] = "dockerBuildProgress"
    stage: Literal["pulling", "building", "complete", "error"]
    service: str
    message: str
    progress: float | None = None


class DockerContainerStatus(RuntimeEventBase):
    type: Literal["dockerContainerStatus"] = "dockerContainerStatus"
    status: Literal["starting", "running", "healthy", "unhealthy", "stopped", "error"]
    service: str
    message: str | None = None


class ProxyAccess(RuntimeEventBase):
    type: Literal["proxyAccess"] = "proxyAccess"
    action: Literal["allowed", "blocked"]
    domain: str
    port: int
    reason: str | None = None


# Each kind of event is listed once; the unions and type sets are derived from these three unions.
_StateEvents = (
    StartRun
    | StartGeneration
    | Retry
    | CallTools
    | CallInteractiveTool
    | CallDelegate
    | ResolveToolResults
    | AttemptCompletion
    | FinishToolCall
    | ResumeToolCalls
    | FinishAllToolCalls
    | ContinueToNextStep
    | StopRunByInteractiveTool
    | StopRunByDelegate
    | StopRunByExceededMaxSteps
    | StopRunByError
    | CompleteRun
)
_StreamingEvents = (
    StartStreamingReasoning
    | StreamReasoning
    | CompleteStreamingReasoning
    | StartStreamingRunResult
    | StreamRunResult
    | CompleteStreamingRunResult
)
_RuntimeEvents = (
    InitializeRuntime
    | SkillStarting
    | SkillConnected
    | SkillStderr
    | SkillDisconnected
    | DockerBuildProgress
    | DockerContainerStatus
    | ProxyAccess
)

RunEvent = Annotated[_StateEvents | _StreamingEvents, Field(discriminator="type")]
RuntimeEvent = Annotated[_RuntimeEvents, Field(discriminator="type")]
Event = Annotated[_StateEvents | _StreamingEvents | _RuntimeEvents, Field(discriminator="type")]


def _types(union: Any) -> tuple[str, ...]:
    """The `type` discriminators of a union's classes, in the union's order."""
    return tuple(cls.model_fields["type"].default for cls in get_args(union))


STREAMING_EVENT_TYPES: frozenset[str] = frozenset(_types(_StreamingEvents))
RUNTIME_EVENT_TYPES: frozenset[str] = frozenset(_types(_RuntimeEvents))
RUN_EVENT_TYPES: frozenset[str] = frozenset(_types(_StateEvents)) | STREAMING_EVENT_TYPES
TERMINAL_OUTCOMES: Mapping[str, RunOutcome] = MappingProxyType(
    {
        cls.model_fields["type"].default: cls.outcome
        for cls in get_args(_StateEvents)
        if cls.outcome is not None
    }
)
"""The events that end a run for the host (their run's last checkpoint rides on them), with their outcome."""
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(TERMINAL_OUTCOMES)
EXIT_CODE_BY_TERMINAL: Mapping[str, int] = MappingProxyType(
    {name: outcome.exit_code for name, outcome in TERMINAL_OUTCOMES.items()}
)
_OUTCOME_BY_CHECKPOINT: dict[str, RunOutcome] = {
    outcome.checkpoint_status: outcome for outcome in TERMINAL_OUTCOMES.values()
}


def outcome_of(event_type: str) -> RunOutcome | None:
    """The outcome an event of this type declares, or None when it does not end a run for the host."""
    return TERMINAL_OUTCOMES.get(event_type)


def outcome_of_checkpoint(status: str) -> RunOutcome | None:
    """The outcome of the terminal event whose checkpoint has this status (None: the run goes on)."""
    return _OUTCOME_BY_CHECKPOINT.get(status)


@cache
def event_adapter() -> TypeAdapter[Event]:
    """The one TypeAdapter for (de)serialising any event; built on first use, then cached."""
    return TypeAdapter(Event)


def parse_event(data: str | bytes | Mapping[str, Any]) -> Event:
    """Validate one event from a JSON line or a decoded object. Raises `pydantic.ValidationError`."""
    if isinstance(data, str | bytes):
        return event_adapter().validate_json(data)
    return event_adapter().validate_python(dict(data))


def is_run_event(event: EventBase) -> bool:
    """True for events that carry `expertKey`/`stepNumber` (the ones a job store persists)."""
    return isinstance(event, RunEventBase)


def event_to_json(event: EventBase) -> str:
    """One compact JSON object, as `JSON.stringify(event)` would print it (no spaces, UTF-8 kept)."""
    return event.model_dump_json()


class JsonlWriter:
    """Writes events one per line to a text stream and flushes each line (thread-safe).

    Why flush per line: the docker executor and `jq`-style consumers read stdout incrementally; a buffered
    event is an event the host never sees if the process is killed.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: EventBase) -> None:
        self.write(event)

    def write(self, event: EventBase) -> None:
        line = event_to_json(event)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def write_raw(self, obj: Mapping[str, Any]) -> None:
        """Pass through an already-decoded event object unchanged (compact, like `JSON.stringify`)."""
        line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
