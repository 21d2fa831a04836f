"""One job: settings, model, skills pool, the job-wide step counter, storage, and the coordinator run.

`run_job()` is the async entry point behind `run_native`: it resolves the starting checkpoint
(`--continue`, `--continue-job`, `--resume-from`, or one handed in by the docker host), emits
`initializeRuntime`, starts the coordinator's skills, runs the coordinator (delegates run through
`Job.run_delegate`), and always closes every skill, whatever happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox._errors import UserError
from sandbox._version import __version__
from sandbox.agent._generate import RetryPolicy
from sandbox.agent._loop import (
    Outcome,
    Run,
    expert_ref,
    new_user_message,
    parse_interactive_answer,
    resume_state,
)
from sandbox.agent._prompt import instruction_message
from sandbox.agent.skills import SkillContext, SkillPool, SkillSet, build_skill_set
from sandbox.events import (
    Checkpoint,
    DelegatedBy,
    EventBase,
    InitializeRuntime,
    InteractiveToolCallRef,
    InteractiveToolCallResult,
    Message,
    RunInput,
    RunSetting,
    Usage,
    create_id,
    now_ms,
)
from sandbox.request import RunRequest, build_run_setting, resolve_run
from sandbox.settings import ResolvedSettings

if TYPE_CHECKING:
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

    from sandbox.config import PerstackConfig
    from sandbox.jobs import JobStore
    from sandbox.options import RunOptions

__all__ = ["Interrupt", "Job", "RuntimeTuning", "run_job"]


@dataclass(frozen=True)
class RuntimeTuning:
    """Knobs that are not user options: backoff timing (tests shrink it), a model override (tests)."""

    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    model: Any = None


@dataclass
class Interrupt:
    """Set by a signal handler before it cancels the run, so stop events can name the signal."""

    signal_name: str | None = None


class Job:
    def __init__(
        self,
        options: RunOptions,
        request: RunRequest,
        *,
        job_id: str,
        emit: Callable[[EventBase], None],
        store: JobStore | None,
        model: Model,
        model_settings: ModelSettings,
        retry_policy: RetryPolicy,
        steps_taken: int,
        interrupt: Interrupt | None = None,
    ) -> None:
        self.options = options
        self.config: PerstackConfig = options.config
        self.request = request
        self.settings: ResolvedSettings = request.settings
        self.job_id = job_id
        self._emit = emit
        self.store = store
        self.model = model
        self.model_settings = model_settings
        self.retry_policy = retry_policy
        self.steps_taken = steps_taken
        self.pool = SkillPool()
        self.interrupt = interrupt or Interrupt()
        self.env = dict(options.env)
        self.workspace = Path(options.workspace)

    # ------------------------------------------------------------------------------------------ plumbing

    def emit(self, event: EventBase) -> None:
        """Persist first (a consumer never sees an event the job directory lacks), then hand it on."""
        if self.store is not None:
            self.store.record(event)
        self._emit(event)

    def take_step(self) -> int | None:
        """The next job-wide step number, or None when `maxSteps` is used up."""
        if self.steps_taken >= self.settings.max_steps:
            return None
        self.steps_taken += 1
        return self.steps_taken

    def interrupt_reason(self) -> str:
        name = self.interrupt.signal_name
        return f"Interrupted by {name}" if name else "Interrupted"

    def skill_context(self, run_id: str) -> SkillContext:
        return SkillContext(
            job_id=self.job_id,
            run_id=run_id,
            emit=self.emit,
            env=self.env,
            workspace=self.workspace,
            loop=asyncio.get_running_loop(),
        )

    def run_setting(self, run_id: str, expert_key: str, run_input: RunInput) -> RunSetting:
        return build_run_setting(
            self.request, self.config, run_id=run_id, expert_key=expert_key, run_input=run_input, env=self.env
        )

    async def skills_for(self, expert_key: str, run_id: str, *, coordinator: bool) -> SkillSet:
        expert = self._expert(expert_key)
        skills = build_skill_set(
            expert_key, expert, self.config, self.skill_context(run_id), self.pool, coordinator=coordinator
        )
        await skills.start(self.pool)
        return skills

    def _expert(self, key: str) -> Any:
        expert = self.config.experts.get(key)
        if expert is None:
            known = ", ".join(sorted(self.config.experts)) or "(none)"
            raise UserError(f"Expert {key} is not defined in perstack.toml (defined: {known})")
        return expert

    # ------------------------------------------------------------------------------------------ runs

    async def run_delegate(self, expert_key: str, query: str, delegated_by: DelegatedBy) -> Outcome:
        """Run a delegate as its own run in this job and return how it ended."""
        expert = self._expert(expert_key)
        step = self.take_step()
        run_id = create_id()
        cp = Checkpoint(
            id=create_id(),
            job_id=self.job_id,
            run_id=run_id,
            status="init",
            step_number=step if step is not None else self.steps_taken,
            messages=[],
            expert=expert_ref(expert_key, expert),
            delegated_by=delegated_by,
            usage=Usage(),
        )
        if step is None:
            return Outcome("max_steps", cp.model_copy(update={"status": "stoppedByExceededMaxSteps"}))
        if self.store is not None:
            self.store.store_run_setting(self.run_setting(run_id, expert_key, RunInput(text=query)))
        try:
            skills = await self.skills_for(expert_key, run_id, coordinator=False)
        except Exception as exc:
            from sandbox.events import CheckpointError

            error = CheckpointError(name=type(exc).__name__, message=str(exc))
            return Outcome(
                "error", cp.model_copy(update={"status": "stoppedByError", "error": error}), error=error
            )
        inputs: list[Message] = [
            instruction_message(expert_key, expert.instruction, skills.skills, self.workspace),
            new_user_message(query),
        ]
        run = Run(
            self,
            run_id=run_id,
            expert_key=expert_key,
            expert=expert,
            skills=skills,
            checkpoint=cp,
            input_messages=inputs,
        )
        return await run.execute()


def _build_model(settings: ResolvedSettings, env: dict[str, str], tuning: RuntimeTuning) -> tuple[Any, Any]:
    from sandbox.agent.models import build_model, build_model_settings

    timeout_s = settings.timeout_ms / 1000
    model_settings = build_model_settings(
        settings.provider,
        reasoning_budget=settings.reasoning_budget,
        temperature=settings.temperature,
        timeout_s=timeout_s,
    )
    if tuning.model is not None:
        return tuning.model, model_settings
    return build_model(
        settings.provider, settings.model, settings.provider_setting, env, timeout_s=timeout_s
    ), model_settings


async def run_job(
    options: RunOptions,
    emit: Callable[[EventBase], None],
    *,
    store: JobStore | None,
    initial_checkpoint: Checkpoint | None = None,
    request: RunRequest | None = None,
    tuning: RuntimeTuning | None = None,
    interrupt: Interrupt | None = None,
) -> Outcome:
    """Run the coordinator to a terminal event. Raises `UserError` for bad input before any run starts.

    `request`: the run as the host resolved it (`sandbox.request`; in the container it came on stdin);
    when None it is resolved here from `options`, starting from `initial_checkpoint` if one is given.
    """
    tuning = tuning or RuntimeTuning()
    if request is None:
        request = resolve_run(options, store, checkpoint=initial_checkpoint)
    settings = request.settings
    expert_key = request.expert_key
    start = request.checkpoint
    job_id = request.job_id
    run_id = create_id()

    answer: InteractiveToolCallResult | None = None
    resumable = start is not None and start.status in ("stoppedByInteractiveTool", "stoppedByDelegate")
    if start is not None and resumable and request.interactive_result is not None:
        answer = parse_interactive_answer(request.interactive_result, start)

    # Job config must exist before the model, so a bad expert key fails fast.
    if expert_key not in options.config.experts:
        known = ", ".join(sorted(options.config.experts)) or "(none)"
        raise UserError(f"Expert {expert_key} is not defined in perstack.toml (defined: {known})")
    model, model_settings = _build_model(settings, dict(options.env), tuning)
    policy = RetryPolicy(
        max_retries=settings.max_retries,
        timeout_s=settings.timeout_ms / 1000,
        backoff_base_s=tuning.backoff_base_s,
        backoff_max_s=tuning.backoff_max_s,
    )
    job = Job(
        options,
        request,
        job_id=job_id,
        emit=emit,
        store=store,
        model=model,
        model_settings=model_settings,
        retry_policy=policy,
        steps_taken=start.step_number if start is not None else 0,
        interrupt=interrupt,
    )
    query = request.query if answer is None else None
    job.emit(
        InitializeRuntime(
            job_id=job_id,
            run_id=run_id,
            runtime_version=__version__,
            runtime=options.runtime,
            expert_name=expert_key,
            experts=sorted(options.config.experts),
            model=settings.model,
            temperature=settings.temperature,
            max_steps=settings.max_steps,
            max_retries=settings.max_retries,
            timeout=settings.timeout_ms,
            query=query if query is not None else request.interactive_result,
            interactive_tool_call=InteractiveToolCallRef(
                tool_name=answer.tool_name, tool_call_id=answer.tool_call_id, text=answer.text
            )
            if answer
            else None,
        )
    )
    try:
        return await _run_coordinator(job, run_id, start, answer, query)
    finally:
        await asyncio.shield(_shutdown(job))


async def _shutdown(job: Job) -> None:
    from sandbox.agent.models import aclose_model

    await job.pool.close_all()
    await aclose_model(job.model)


async def _run_coordinator(
    job: Job,
    run_id: str,
    start: Checkpoint | None,
    answer: InteractiveToolCallResult | None,
    query: str | None,
) -> Outcome:
    options = job.options
    expert_key = options.expert_key
    expert = job._expert(expert_key)
    if job.store is not None:
        job.store.ensure_job(job.job_id, expert_key, max_steps=job.settings.max_steps)
        job.store.store_run_setting(
            job.run_setting(run_id, expert_key, RunInput(text=query, interactive_tool_call_result=answer))
        )
    skills = await job.skills_for(expert_key, run_id, coordinator=True)
    instruction = instruction_message(expert_key, expert.instruction, skills.skills, job.workspace)
    step = job.take_step()
    if step is None:
        # Resuming a job whose steps are used up: start and stop at once, as Perstack does.
        step = job.steps_taken
    resume = None
    inputs: list[Message]
    if start is None:
        cp = Checkpoint(
            id=create_id(),
            job_id=job.job_id,
            run_id=run_id,
            status="init",
            step_number=step,
            messages=[],
            expert=expert_ref(expert_key, expert),
            usage=Usage(),
            metadata={"runtime": options.runtime},
        )
        inputs = [instruction, new_user_message(query or "")]
    else:
        messages = [instruction if m.type == "instructionMessage" else m for m in start.messages]
        if not any(m.type == "instructionMessage" for m in messages):
            messages.insert(0, instruction)
        base = start.model_copy(update={"messages": messages})
        if start.status in ("stoppedByInteractiveTool", "stoppedByDelegate"):
            prior, resume = resume_state(base, answer)
            inputs = []
        else:
            prior, inputs = messages, [new_user_message(query or "")]
        cp = start.model_copy(
            update={"id": create_id(), "run_id": run_id, "step_number": step, "messages": prior}
        )
    if job.steps_taken > job.settings.max_steps or (start is not None and step == start.step_number):
        from sandbox.events import StartRun, Step, StopRunByExceededMaxSteps

        job.emit(
            StartRun(
                expert_key=expert_key,
                job_id=job.job_id,
                run_id=run_id,
                step_number=cp.step_number,
                initial_checkpoint=cp,
                input_messages=inputs,
            )
        )
        stopped = cp.model_copy(
            update={"status": "stoppedByExceededMaxSteps", "messages": [*cp.messages, *inputs]}
        )
        job.emit(
            StopRunByExceededMaxSteps(
                expert_key=expert_key,
                job_id=job.job_id,
                run_id=run_id,
                step_number=cp.step_number,
                checkpoint=stopped,
                step=Step(step_number=cp.step_number, started_at=now_ms(), finished_at=now_ms()),
            )
        )
        return Outcome("max_steps", stopped)
    run = Run(
        job,
        run_id=run_id,
        expert_key=expert_key,
        expert=expert,
        skills=skills,
        checkpoint=cp,
        input_messages=inputs,
        resume=resume,
    )
    return await run.execute()
