"""The host side of the event stream: validate each line from the Expert, store it, emit it, judge the end.

Why validate on the host: the container runs third-party skill code, so its stdout is untrusted input to
the host's job store and to whatever consumes our stdout. Each line must be a JSON object that validates as
a Perstack event (`sandbox.events.parse_event`), and must belong to this run's job: an event naming another
job id is dropped, so nothing inside the sandbox can write checkpoints into another job's directory.
Anything else is not an event: it goes to stderr with `--verbose` and is otherwise only kept (the last
lines) for error messages.

Storage mirrors the native runtime exactly (`Job.emit`): persist first, then emit, through the same
`JobStore.record`, so `./perstack/jobs/<jobId>/` looks the same after a docker run as after a local one
and `--continue` / `--continue-job` / `--resume-from` / `-i` find their checkpoints. Run settings are
written here, on `initializeRuntime` (coordinator) and delegated `startRun`s, because the runtime inside
stores nothing.

Who may say what: the Expert's stream carries only the runtime's events. Infrastructure events
(`proxyAccess`, `dockerBuildProgress`, `dockerContainerStatus`) come from the host's own sources (the
proxy's log, the build, the engine); one arriving on the container's stream is dropped and reported. With
a `wire` (every docker run has one) each line must also carry the run key's MAC and the next sequence
number (`sandbox._wire`): an unsigned, forged or replayed line is dropped and reported, a gap is reported
and fails the run. Reports go to stderr (the first few of each kind; all are counted in `counts`).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from sandbox._wire import WireReader
from sandbox.events import (
    Checkpoint,
    EventBase,
    InitializeRuntime,
    RunSetting,
    StartRun,
    TextPart,
    UserMessage,
    outcome_of,
    parse_event,
)
from sandbox.jobs import JobStore

__all__ = ["HOST_EVENT_TYPES", "EventPump", "RunSettingFactory"]

# Events only the host's own sources emit; never accepted from the container's stream.
HOST_EVENT_TYPES: frozenset[str] = frozenset({"proxyAccess", "dockerBuildProgress", "dockerContainerStatus"})
_REPORTS_PER_KIND = 5

RunSettingFactory = Callable[[str, str, str | None, InitializeRuntime | None], RunSetting]
"""(run_id, expert_key, input text, initializeRuntime or None for a delegate) -> the run's settings."""


@dataclass
class _Counts:
    events: int = 0
    invalid: int = 0
    foreign: int = 0
    other: int = 0
    infrastructure: int = 0  # host-only event types from the container: dropped
    unsigned: int = 0  # event-looking lines without the wire's MAC: dropped
    bad_mac: int = 0
    out_of_sequence: int = 0
    lost: int = 0  # lines missing from the sequence (the run fails)


class EventPump:
    """Consumes the Expert container's output lines. Not thread-safe: one reader feeds it."""

    def __init__(
        self,
        *,
        job_id: str,
        expert_key: str,
        emit: Callable[[EventBase], None],
        store: JobStore | None,
        diag: Callable[[str], None],
        verbose: bool = False,
        run_setting: RunSettingFactory | None = None,
        on_run_id: Callable[[str], None] | None = None,
        on_terminal: Callable[[EventBase], None] | None = None,
        on_first: Callable[[], None] | None = None,
        tail: int = 40,
        wire: WireReader | None = None,
    ) -> None:
        self.job_id = job_id
        self.expert_key = expert_key
        self._emit = emit
        self._store = store
        self._diag = diag
        self._verbose = verbose
        self._run_setting = run_setting
        self._on_run_id = on_run_id
        self._on_terminal = on_terminal
        self._on_first = on_first
        self.run_id: str | None = None
        self.terminal: EventBase | None = None
        self.counts = _Counts()
        self.tail: deque[str] = deque(maxlen=tail)
        self.store_errors: list[str] = []
        self._wire = wire
        self._reported: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ input

    def stderr_line(self, line: str) -> None:
        """The container's stderr: diagnostics from the runtime (errors, tracebacks)."""
        self.tail.append(line)
        if self._verbose:
            self._diag(line)

    def stdout_line(self, line: str) -> None:
        """One stdout line: an event, or other output."""
        text = line.strip()
        if self._wire is not None:
            verdict = self._wire.check(text)
            if verdict.body is None:
                if verdict.problem == "unsigned" and not _looks_like_event(text):
                    self._other(text)  # plain output (a stray print): never an event
                    return
                self._drop(verdict.problem or "unsigned", text)
                return
            if verdict.lost:
                self.counts.lost += verdict.lost
                self._diag(
                    f"sandbox: {verdict.lost} event line(s) from the Expert's runtime are missing "
                    "(lost or tampered with); this run's record is incomplete and the run fails"
                )
            text = verdict.body
        obj = None
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            self._other(text)
            return
        if obj["type"] in HOST_EVENT_TYPES:
            self._drop("infrastructure", text, obj["type"])
            return
        try:
            event = parse_event(obj)
        except ValidationError as exc:
            self.counts.invalid += 1
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            loc = ".".join(str(p) for p in first.get("loc", ()))
            self._diag(
                f"sandbox: dropped an invalid {obj.get('type')!r} event from the container: {loc}: "
                f"{first.get('msg')}"
            )
            return
        if getattr(event, "job_id", None) != self.job_id:
            self.counts.foreign += 1
            self._diag(
                f"sandbox: dropped a {event.type!r} event for job {getattr(event, 'job_id', None)!r}; "
                f"this run is job {self.job_id!r}"
            )
            return
        self.counts.events += 1
        if self.counts.events == 1 and self._on_first is not None:
            self._on_first()
        self._before_store(event)
        if self._store is not None:
            try:
                self._store.record(event)
            except (OSError, ValueError) as exc:
                if not self.store_errors:
                    self._diag(f"sandbox: cannot store job files in {self._store.jobs_dir}: {exc}")
                self.store_errors.append(str(exc))
        self._emit(event)
        self._after_emit(event)

    def _drop(self, kind: str, text: str, event_type: str | None = None) -> None:
        """Count a refused line and say so on stderr (the first few of each kind: the stream is untrusted)."""
        field = kind.replace("-", "_")
        setattr(self.counts, field, getattr(self.counts, field) + 1)
        seen = self._reported.get(kind, 0) + 1
        self._reported[kind] = seen
        if seen > _REPORTS_PER_KIND:
            return
        what = repr(event_type) if event_type else _type_of(text)
        why = {
            "infrastructure": "infrastructure events come only from the host's own sources",
            "unsigned": "it does not carry the run key's MAC",
            "bad-mac": "its MAC is not valid for this run's key",
            "out-of-sequence": "its sequence number was already used (a replay)",
        }[kind]
        more = " (further ones are counted, not shown)" if seen == _REPORTS_PER_KIND else ""
        self._diag(f"sandbox: dropped a {what} line from the Expert's output: {why}{more}")

    def _other(self, text: str) -> None:
        self.counts.other += 1
        self.tail.append(text)
        if self._verbose:
            self._diag(text)

    # ------------------------------------------------------------------------------------------ job files

    def _before_store(self, event: EventBase) -> None:
        if isinstance(event, InitializeRuntime) and self.run_id is None:
            self.run_id = event.run_id
            if self._on_run_id is not None:
                self._on_run_id(event.run_id)
            if self._store is not None and self._run_setting is not None:
                self._write_setting(event.run_id, self.expert_key, event.query, event)
        elif (
            isinstance(event, StartRun)
            and event.initial_checkpoint.delegated_by is not None
            and self._store is not None
            and self._run_setting is not None
        ):
            self._write_setting(event.run_id, event.expert_key, _query_of(event), None)

    def _write_setting(
        self, run_id: str, expert_key: str, text: str | None, init: InitializeRuntime | None
    ) -> None:
        assert self._store is not None and self._run_setting is not None
        try:
            setting = self._run_setting(run_id, expert_key, text, init)
            if init is not None:
                self._store.ensure_job(self.job_id, expert_key, max_steps=init.max_steps)
            self._store.store_run_setting(setting)
        except (OSError, ValueError) as exc:
            self.store_errors.append(str(exc))
            self._diag(f"sandbox: cannot store the run settings: {exc}")

    def _after_emit(self, event: EventBase) -> None:
        if outcome_of(event.type) is None:  # the run goes on (`stopRunByDelegate`: the delegates run)
            return
        checkpoint: Checkpoint | None = getattr(event, "checkpoint", None)
        coordinator = getattr(event, "expert_key", None) == self.expert_key and (
            checkpoint is None or checkpoint.delegated_by is None
        )
        if self.run_id is not None:
            coordinator = coordinator and getattr(event, "run_id", None) == self.run_id
        if coordinator:
            self.terminal = event
            if self._on_terminal is not None:
                self._on_terminal(event)

    # ------------------------------------------------------------------------------------------ outcome

    def exit_code(self) -> int | None:
        """The exit code the terminal event implies, or None without one."""
        if self.terminal is None:
            return None
        if self.counts.lost:
            return 1
        outcome = outcome_of(self.terminal.type)
        return 1 if outcome is None else outcome.exit_code


def _looks_like_event(text: str) -> bool:
    """A JSON object with a `type` (what the host would take for an event), or a line of the wire format."""
    if text.startswith("sbx"):
        return True
    if not text.startswith("{"):
        return False
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and "type" in obj


def _type_of(text: str) -> str:
    """The line's event type for a report, as a quoted name, or 'non-event'."""
    body = text.split(" ", 3)[-1] if text.startswith("sbx") else text
    try:
        obj = json.loads(body)
    except ValueError:
        return "non-event"
    kind = obj.get("type") if isinstance(obj, dict) else None
    return repr(kind[:60]) if isinstance(kind, str) else "non-event"


def _query_of(event: StartRun) -> str | None:
    for message in event.input_messages:
        if isinstance(message, UserMessage):
            texts = [p.text for p in message.contents if isinstance(p, TextPart)]
            if texts:
                return "\n".join(texts)
    return None
