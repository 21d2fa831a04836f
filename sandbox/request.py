"""One run, resolved once: the typed object every runtime runs, and what crosses into the container.

Why this module: a run used to be resolved in pieces, again by each runtime. The docker executor turned the
options into argv, the container parsed them back with a second parser, re-resolved the settings against
its copy of the config, re-checked the resume rules and built a RunSetting it threw away, while the host
rebuilt that RunSetting from the native runtime's private module. Now the host resolves the run here once:

* `resolve_run` applies the resume rules (`check_resume`, the one copy), picks the job id and applies every
  default (`sandbox.settings`);
* the `RunRequest` it returns is what the native runtime runs, on the host or in the container; across
  the container boundary it travels as JSON on stdin beside the secrets (`WirePayload`), never as argv;
* `build_run_setting` is the one RunSetting builder: the native runtime stores what it ran with it, the
  docker host records the container's runs with it, from the same request, so the two cannot differ; a CLI
  runtime records its runs with it too, saying what the CLI was given instead (`CliRun`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from sandbox._errors import UserError
from sandbox.events import Checkpoint, RunInput, RunSetting, create_id, now_ms
from sandbox.settings import CliLimits, ResolvedSettings, resolve_settings

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig
    from sandbox.jobs import JobStore
    from sandbox.options import RunOptions

__all__ = ["CliRun", "RunRequest", "WirePayload", "build_run_setting", "check_resume", "resolve_run"]

#: Checkpoint statuses a run resumes from without a new query (the answer or the delegates' results).
_RESUMES_WITHOUT_QUERY = ("stoppedByInteractiveTool", "stoppedByDelegate")


class RunRequest(BaseModel):
    """Everything that decides what one run does, resolved on the host: who, what, how long, from where.

    `settings`: provider, model and limits with every default applied. `checkpoint`: the resume target
    (None: a fresh job). `job_id`: the checkpoint's job, `--job-id`, or a new id. `deadline`: epoch seconds
    after which the container stops the run by itself (the host's wall-clock guard, for when the host
    process is gone). Nothing secret is in here: the env values travel beside it (`WirePayload.env`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    expert_key: str
    query: str | None = None
    job_id: str
    settings: ResolvedSettings
    checkpoint: Checkpoint | None = None
    interactive_result: str | None = None
    verbose: bool = False
    deadline: float | None = None


class WirePayload(BaseModel):
    """The one JSON line the host writes to the Expert container's stdin (fresh or standby alike).

    Secrets travel here so that they never appear in argv, `docker inspect`, image layers or rendered
    files; `event_key` signs every event line the runtime writes to stdout (`sandbox._wire`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    run: RunRequest
    env: dict[str, str] = Field(default_factory=dict)
    event_key: str = Field(alias="eventKey", min_length=1)

    def to_line(self) -> bytes:
        return (self.model_dump_json(by_alias=True) + "\n").encode()


def check_resume(checkpoint: Checkpoint | None, *, query: str | None, interactive_result: str | None) -> None:
    """Refuse a run that cannot start from `checkpoint` (Perstack's rules), before anything is built.

    A fresh job needs a query (or `-i`); a checkpoint that awaits an interactive tool needs `-i`; one that
    stopped for its delegates resumes as is; any other checkpoint needs a new query.
    """
    if checkpoint is None:
        if query is None and interactive_result is None:
            raise UserError("A query is required")
        return
    if checkpoint.status == "stoppedByInteractiveTool" and interactive_result is None:
        raise UserError("The checkpoint awaits an interactive tool result: pass it with -i")
    if checkpoint.status not in _RESUMES_WITHOUT_QUERY and query is None:
        raise UserError("A query is required")


def resolve_run(
    options: RunOptions,
    store: JobStore | None,
    *,
    checkpoint: Checkpoint | None = None,
    deadline: float | None = None,
) -> RunRequest:
    """Resolve `options` into the run to do. Raises `UserError` for a run that cannot start.

    `checkpoint`: start from this one (an API caller's, already loaded); otherwise `--continue`,
    `--continue-job` and `--resume-from` pick one from `store` (the options' jobs dir when None).
    """
    if checkpoint is not None:
        if checkpoint.expert.key != options.expert_key:
            key, wanted = checkpoint.expert.key, options.expert_key
            raise UserError(f"Checkpoint expert key {key} does not match input expert key {wanted}")
    elif options.continue_latest or options.continue_job or options.resume_from:
        from sandbox.jobs import JobStore as _Store
        from sandbox.jobs import resolve_checkpoint

        checkpoint = resolve_checkpoint(
            store or _Store(options.jobs_dir),
            expert_key=options.expert_key,
            continue_latest=options.continue_latest,
            continue_job=options.continue_job,
            resume_from=options.resume_from,
        )
    check_resume(checkpoint, query=options.query, interactive_result=options.interactive_result)
    if checkpoint is None and options.job_id is not None:
        from sandbox.jobs import check_id

        check_id("job", options.job_id)  # a path component in the store: refused before any event
    return RunRequest(
        expert_key=options.expert_key,
        query=options.query,
        job_id=checkpoint.job_id if checkpoint is not None else (options.job_id or create_id()),
        settings=resolve_settings(options),
        checkpoint=checkpoint,
        interactive_result=options.interactive_result,
        verbose=options.verbose,
        deadline=deadline,
    )


@dataclass(frozen=True)
class CliRun:
    """What a CLI runtime (`sandbox.runtimes`) gave its CLI in place of the request's native settings.

    `runtime`: the runtime's id, recorded as the provider (`{"runtime": id}`): the CLI picks its own.
    `model`: the model passed to the CLI, or `<id>:default`. `limits`: what the CLI was told
    (`sandbox.settings.resolve_cli_limits`, from the request's settings). The CLI takes no temperature or
    reasoning budget, so none is recorded.
    """

    runtime: str
    model: str
    limits: CliLimits


def build_run_setting(
    request: RunRequest,
    config: PerstackConfig,
    *,
    run_id: str,
    expert_key: str,
    run_input: RunInput,
    env: Mapping[str, str],
    experts: Iterable[str] | None = None,
    proxy_url: str | None = None,
    cli: CliRun | None = None,
) -> RunSetting:
    """The RunSetting of one run of `request`'s job (its coordinator's or a delegate's).

    `env`: stored redacted by `JobStore.store_run_setting`; the docker host and the CLI runtimes pass names
    with empty values. `experts`: the Experts to record (the sandbox's, for a docker run; the Expert and
    its delegates, for a CLI run); every Expert of `config` if None. `cli`: the run went through a CLI
    runtime, which ran with these instead of the native provider, model and limits.
    """
    from sandbox.config import DEFAULT_PERSTACK_API_BASE_URL

    s = request.settings
    keys = list(config.experts) if experts is None else [k for k in experts if k in config.experts]
    recorded: dict[str, Any] = {
        k: config.experts[k].model_dump(mode="json", by_alias=True, exclude_none=True) for k in keys
    }
    ran: dict[str, Any] = {
        "model": s.model,
        "provider_config": {"providerName": s.provider, **s.provider_setting},
        "reasoning_budget": s.reasoning_budget,
        "temperature": s.temperature,
        "max_steps": s.max_steps,
        "max_retries": s.max_retries,
        "timeout": s.timeout_ms,
    }
    if cli is not None:
        ran.update(
            model=cli.model,
            provider_config={"runtime": cli.runtime},
            reasoning_budget=None,
            temperature=None,
            max_steps=cli.limits.max_steps,
            max_retries=cli.limits.max_retries,
            timeout=cli.limits.timeout_ms,
        )
    now = now_ms()
    return RunSetting(
        **ran,
        job_id=request.job_id,
        run_id=run_id,
        expert_key=expert_key,
        input=run_input,
        experts=recorded,
        started_at=now,
        updated_at=now,
        perstack_api_base_url=config.perstack_api_base_url or DEFAULT_PERSTACK_API_BASE_URL,
        perstack_base_skill_command=list(config.perstack_base_skill_command or []) or None,
        env=dict(env),
        proxy_url=proxy_url,
        verbose=request.verbose or None,
    )
