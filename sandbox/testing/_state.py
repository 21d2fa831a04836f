"""The server's memory: which turns are left, every request received, everything that went wrong.

All decisions about a request (which turn answers it, whether its expectations hold, whether the
script ran out) happen here under one lock, in `ScriptState.admit()`, so that concurrent callers
(parallel delegates) each get exactly one turn and the record order is the decision order. The HTTP
layer only renders what was decided. Reads hand out copies, because tests read from another thread
than the server writes from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter
from pydantic.dataclasses import dataclass as pydantic_dataclass

from ._inspect import RequestView, check_expectation
from ._script import ErrorSpec, Protocol, Turn

__all__ = [
    "Admission",
    "Incoming",
    "RecordedRequest",
    "ScriptState",
    "Unexpected",
    "UnexpectedKind",
    "format_problems",
]

UnexpectedKind = Literal["expectation", "exhausted", "auth", "route", "bad_request"]
"""Why a request was unexpected: a failed `expect`, no turn left, a wrong/missing key, an unknown
path, or a body that is not a JSON object."""


@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class Unexpected:
    """Something the system under test did that the script did not allow for."""

    kind: UnexpectedKind
    message: str
    request_number: int | None = None

    def __str__(self) -> str:
        where = f"request #{self.request_number}: " if self.request_number is not None else ""
        return f"{where}{self.kind}: {self.message}"


@pydantic_dataclass(config=ConfigDict(extra="forbid"))
class RecordedRequest:
    """One request as received: headers lower-cased, body decoded (`None` if it was not JSON).

    `turn_index`/`turn` name the scripted turn it consumed (`None` when it consumed none: model
    listing, token counting, rejected requests). `status` is the HTTP status it was answered with.
    `abandoned` turns true when the client hung up during the turn's `delay_s` (its timeout fired),
    so a timeout test can check the server saw the give-up rather than infer it.
    The properties read the body protocol-neutrally (see `RequestView`).
    """

    number: int
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    protocol: Protocol | None
    status: int
    turn_index: int | None = None
    turn: Turn | None = None
    abandoned: bool = False
    received_at: float = field(default_factory=time.time)

    @property
    def view(self) -> RequestView:
        """The protocol-neutral reading of this request (empty for non-model requests)."""
        body = self.body if isinstance(self.body, dict) else {}
        return RequestView.parse(self.protocol or "openai", body, self.headers)

    @property
    def system(self) -> str:
        """The system prompt (Anthropic `system`, or OpenAI system/developer messages joined)."""
        return self.view.system

    @property
    def tool_names(self) -> tuple[str, ...]:
        """Names of the tools offered to the model."""
        return self.view.tool_names

    @property
    def tool_results(self) -> tuple[str, ...]:
        """Texts of the tool results in the last message."""
        return self.view.tool_results

    @property
    def messages(self) -> tuple[tuple[str, str], ...]:
        """`(role, text)` of each non-system message."""
        return self.view.messages

    @property
    def api_key(self) -> str | None:
        """The key sent: `x-api-key`, else the bearer token."""
        return self.view.api_key

    @property
    def stream(self) -> bool:
        """Whether the request asked for a stream."""
        return isinstance(self.body, dict) and self.body.get("stream") is True


RECORDS_ADAPTER: TypeAdapter[list[RecordedRequest]] = TypeAdapter(list[RecordedRequest])
UNEXPECTED_ADAPTER: TypeAdapter[list[Unexpected]] = TypeAdapter(list[Unexpected])


@dataclass(frozen=True)
class Incoming:
    """A request as the HTTP layer read it, before any decision: what gets recorded."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any
    protocol: Protocol | None


@dataclass(frozen=True)
class Admission:
    """The decision for one model request.

    Either `failure` is set (the server itself rejects the request, immediately, in the provider's
    error shape) or `turn` is the scripted turn to play, which may itself be a scripted error.
    """

    number: int
    turn_index: int | None = None
    turn: Turn | None = None
    failure: ErrorSpec | None = None


def format_problems(
    unexpected: Iterable[Unexpected], pending: Iterable[tuple[str, str | None]]
) -> str | None:
    """The `assert_all_served()` message, or `None` when there is nothing to report.

    `pending` holds `(description, match)` of each unserved turn, so the remote client (which only
    has the JSON) words it exactly like the in-process server.
    """
    lines = [f"  - {item}" for item in unexpected]
    for description, match in pending:
        marker = f", waiting for a request containing {match!r}" if match else ""
        lines.append(f"  - {description} was never served{marker}")
    if not lines:
        return None
    return "scripted LLM server: the conversation did not go as scripted:\n" + "\n".join(lines)


class ScriptState:
    """Turns, served flags and records behind one lock (the server thread writes, tests read)."""

    def __init__(self, turns: Iterable[Turn] = ()) -> None:
        self._lock = threading.Lock()
        self._turns: list[Turn] = list(turns)
        self._served: list[bool] = [False] * len(self._turns)
        self._requests: list[RecordedRequest] = []
        self._unexpected: list[Unexpected] = []
        self.closing = threading.Event()
        """Set when the server shuts down, so scripted delays stop early instead of holding it up."""

    # -- script -------------------------------------------------------------------------------------

    def replace(self, turns: Iterable[Turn]) -> None:
        """Start over with a new script: records and failures are cleared too."""
        with self._lock:
            self._turns = list(turns)
            self._served = [False] * len(self._turns)
            self._requests.clear()
            self._unexpected.clear()

    def enqueue(self, turns: Iterable[Turn]) -> None:
        """Append turns to the end of the script, keeping what was served."""
        with self._lock:
            new = list(turns)
            self._turns.extend(new)
            self._served.extend([False] * len(new))

    # -- reads --------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def unexpected(self) -> list[Unexpected]:
        with self._lock:
            return list(self._unexpected)

    @property
    def pending(self) -> list[tuple[int, Turn]]:
        """`(index, turn)` of every turn not served yet."""
        with self._lock:
            return [(i, t) for i, t in enumerate(self._turns) if not self._served[i]]

    def problems(self) -> str | None:
        """Everything `assert_all_served()` complains about, as one message."""
        with self._lock:
            pending = [(t.describe(i), t.match) for i, t in enumerate(self._turns) if not self._served[i]]
            return format_problems(list(self._unexpected), pending)

    # -- writes -------------------------------------------------------------------------------------

    def record(
        self, incoming: Incoming, status: int, problem: tuple[UnexpectedKind, str] | None = None
    ) -> int:
        """Record a request that consumes no turn; returns its number."""
        with self._lock:
            return self._append(incoming, status, problem=problem)

    def admit(self, incoming: Incoming, view: RequestView) -> Admission:
        """Pick the turn for a model request, check its expectations, and record the outcome."""
        with self._lock:
            number = len(self._requests)
            index = self._pick(view.haystack)
            if index is None:
                message = self._exhausted_message(view)
                self._append(incoming, 500, problem=("exhausted", message))
                return Admission(number, failure=ErrorSpec(500, message=message))
            turn = self._turns[index]
            self._served[index] = True
            body = incoming.body if isinstance(incoming.body, dict) else {}
            problems = check_expectation(turn.expect, view, body) if turn.expect is not None else []
            if problems:
                message = f"{turn.describe(index)} expectation failed: " + "; ".join(problems)
                self._append(incoming, 400, index, turn, ("expectation", message))
                return Admission(number, index, turn, ErrorSpec(400, message=message))
            status = 200
            if turn.error is not None and not (turn.error.mid_stream and view.stream):
                status = turn.error.status
            self._append(incoming, status, index, turn)
            return Admission(number, index, turn)

    def mark_abandoned(self, number: int) -> None:
        """Note that the client of request `number` hung up before its answer."""
        with self._lock:
            self._requests[number].abandoned = True

    def _pick(self, haystack: str) -> int | None:
        # A turn waiting for a marker takes precedence, so a delegate's turns cannot be eaten by
        # whichever concurrent caller happened to arrive first; then unmarked turns in order.
        for i, turn in enumerate(self._turns):
            if not self._served[i] and turn.match is not None and turn.match in haystack:
                return i
        for i, turn in enumerate(self._turns):
            if not self._served[i] and turn.match is None:
                return i
        return None

    def _exhausted_message(self, view: RequestView) -> str:
        waiting = [t.match for i, t in enumerate(self._turns) if not self._served[i] and t.match]
        last = view.messages[-1][1] if view.messages else ""
        shown = last if len(last) <= 120 else last[:120] + "..."
        message = (
            f"script exhausted: {len(self._turns)} turn(s) scripted and no turn left for this "
            f"{view.protocol} request (last message: {shown!r})"
        )
        if waiting:
            message += f"; the remaining turns wait for markers {waiting} that this request does not contain"
        return message

    def _append(
        self,
        incoming: Incoming,
        status: int,
        turn_index: int | None = None,
        turn: Turn | None = None,
        problem: tuple[UnexpectedKind, str] | None = None,
    ) -> int:
        number = len(self._requests)
        self._requests.append(
            RecordedRequest(
                number=number,
                method=incoming.method,
                path=incoming.path,
                query=incoming.query,
                headers=dict(incoming.headers),
                body=incoming.body,
                protocol=incoming.protocol,
                status=status,
                turn_index=turn_index,
                turn=turn,
            )
        )
        if problem is not None:
            self._unexpected.append(Unexpected(problem[0], problem[1], number))
        return number
