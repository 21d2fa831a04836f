"""One generation: a streamed model request with a deadline, retries with backoff, and streaming events.

Why the runtime retries instead of the SDKs: every retry must be visible as a Perstack `retry` event and
count against `--max-retries`, so SDK clients are built with `max_retries=0` and this module decides:
429, 5xx, overloaded, connection errors and timeouts (including our own `--timeout` per generation) are
retried with exponential backoff and jitter, honouring the provider's `retry-after` up to a cap; anything
else (bad request, auth, unknown model) fails at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.agent._messages import to_model_messages, usage_from
from sandbox.agent.skills import ToolSpec
from sandbox.events import (
    CheckpointError,
    CompleteStreamingReasoning,
    CompleteStreamingRunResult,
    EventBase,
    Message,
    StartStreamingReasoning,
    StartStreamingRunResult,
    StreamReasoning,
    StreamRunResult,
    Usage,
)

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelResponse
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

__all__ = ["GenerationError", "Generator", "RetryPolicy"]

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    timeout_s: float
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        base = float(min(self.backoff_base_s * (2.0 ** (attempt - 1)), self.backoff_max_s))
        jittered = base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            return float(min(max(float(retry_after), jittered), self.backoff_max_s))
        return jittered


class GenerationError(Exception):
    """The generation could not be completed; `error` is what goes into `stopRunByError`."""

    def __init__(self, error: CheckpointError) -> None:
        super().__init__(error.message)
        self.error = error


def classify(exc: BaseException) -> tuple[CheckpointError, bool]:
    """An exception from a model request -> (Perstack error object, retryable?)."""
    from pydantic_ai import exceptions as px

    if isinstance(exc, TimeoutError):
        return CheckpointError(name="TimeoutError", message="Generation timed out", is_retryable=True), True
    status = getattr(exc, "status_code", None)
    retryable = isinstance(
        exc,
        px.ModelRateLimitError
        | px.ModelUnavailableError
        | px.ModelServerError
        | px.ModelConnectionError
        | px.ModelRequestTimeout,
    ) or (isinstance(status, int) and status in _RETRYABLE_STATUS)
    if isinstance(exc, px.ModelRequestRejectedError | px.ModelQuotaExceededError):
        retryable = False
    name = "APICallError" if isinstance(exc, px.ModelAPIError) else type(exc).__name__
    message = str(exc) or type(exc).__name__
    return CheckpointError(name=name, message=message, status_code=status, is_retryable=retryable), retryable


class Generator:
    """Runs generations for one run; emits streaming and `retry` events through `emit_run_event`."""

    def __init__(
        self,
        model: Model,
        settings: ModelSettings,
        policy: RetryPolicy,
        emit_run_event: Callable[[type[EventBase], dict[str, Any]], None],
    ) -> None:
        self._model = model
        self._settings = settings
        self._policy = policy
        self._emit = emit_run_event

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, run_result: bool = False
    ) -> tuple[ModelResponse, Usage]:
        """One response, after up to `max_retries` retries. Raises `GenerationError`."""
        from sandbox.events import Retry

        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self._policy.timeout_s):
                    response = await self._stream(messages, tools, run_result=run_result)
                return response, usage_from(response.usage)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error, retryable = classify(exc)
                attempt += 1
                if not retryable or attempt > self._policy.max_retries:
                    if retryable:
                        error = error.model_copy(
                            update={"message": f"{error.message} (gave up after {attempt - 1} retries)"}
                        )
                    raise GenerationError(error) from exc
                self._emit(Retry, {"reason": error.message, "new_messages": [], "usage": Usage()})
                await asyncio.sleep(self._policy.delay(attempt, getattr(exc, "retry_after", None)))

    async def _stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, run_result: bool
    ) -> ModelResponse:
        from pydantic_ai import messages as pm
        from pydantic_ai.direct import model_request_stream
        from pydantic_ai.models import ModelRequestParameters
        from pydantic_ai.tools import ToolDefinition

        params = ModelRequestParameters(
            function_tools=[
                ToolDefinition(name=t.name, description=t.description, parameters_json_schema=t.input_schema)
                for t in tools
            ],
            allow_text_output=True,
        )
        history = to_model_messages(messages, self._model.system)
        thinking_open = result_open = False
        async with model_request_stream(
            self._model, history, model_settings=self._settings, model_request_parameters=params
        ) as stream:
            async for event in stream:
                if isinstance(event, pm.PartStartEvent):
                    if isinstance(event.part, pm.ThinkingPart):
                        if not thinking_open:
                            self._emit(StartStreamingReasoning, {})
                            thinking_open = True
                        if event.part.content:
                            self._emit(StreamReasoning, {"delta": event.part.content})
                    elif isinstance(event.part, pm.TextPart) and run_result:
                        if not result_open:
                            self._emit(StartStreamingRunResult, {})
                            result_open = True
                        if event.part.content:
                            self._emit(StreamRunResult, {"delta": event.part.content})
                elif isinstance(event, pm.PartDeltaEvent):
                    delta = event.delta
                    if isinstance(delta, pm.ThinkingPartDelta) and delta.content_delta:
                        self._emit(StreamReasoning, {"delta": delta.content_delta})
                    elif isinstance(delta, pm.TextPartDelta) and run_result and delta.content_delta:
                        self._emit(StreamRunResult, {"delta": delta.content_delta})
            response = stream.get()
        if thinking_open:
            text = "".join(p.content for p in response.parts if isinstance(p, pm.ThinkingPart))
            self._emit(CompleteStreamingReasoning, {"text": text})
        if result_open:
            text = "".join(p.content for p in response.parts if isinstance(p, pm.TextPart))
            self._emit(CompleteStreamingRunResult, {"text": text})
        return response
