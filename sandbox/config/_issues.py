"""Small helpers every config module shares: showing values safely, "did you mean", precise pydantic errors.

Why one module: messages are the product of the config layer. Every message shows user values the same
way (escaped, truncated, on one line, so a newline injected into a domain cannot forge a second message
line) and every validator that finds a problem deeper than its own field reports it with an exact
location instead of a vague one at the model level.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["ISSUE_TYPE", "Loc", "issue", "issues_error", "show", "suggest", "with_suggestion"]

# The pydantic error type of every message written by this package. The translator in `_errors_format`
# passes these messages through unchanged (they are already complete sentences).
ISSUE_TYPE = "sandbox_config"

Loc = tuple[str | int, ...]

_MAX_SHOWN = 80


def show(value: object) -> str:
    """`value` in backticks, JSON-escaped (so CR/LF/quotes stay visible and inert) and cut at 80 chars."""
    if isinstance(value, bool):
        text = "true" if value else "false"  # TOML spelling, not Python's
    else:
        text = value if isinstance(value, str) else repr(value)
    escaped = json.dumps(text, ensure_ascii=False)[1:-1]
    if len(escaped) > _MAX_SHOWN:
        escaped = escaped[: _MAX_SHOWN - 1] + "…"
    return f"`{escaped}`"


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to `word`, or None.

    Separator and case differences win first (`package_name`, `packagename` → `packageName`), because
    those are the usual mistakes when people translate snake_case docs into Perstack's camelCase keys.
    """
    options = sorted(set(choices))

    def squash(s: str) -> str:
        return s.replace("_", "").replace("-", "").lower()

    for option in options:
        if squash(option) == squash(word):
            return option
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def with_suggestion(message: str, word: str, choices: Iterable[str]) -> str:
    """`message` plus "; did you mean `X`?" when a close choice exists."""
    hint = suggest(word, choices)
    return f"{message}; did you mean `{hint}`?" if hint else message


def issue(message: str) -> PydanticCustomError:
    """A pydantic error carrying our own complete message (braces in it are not re-formatted)."""
    return PydanticCustomError(ISSUE_TYPE, "{detail}", {"detail": message})


def issues_error(title: str, found: Sequence[tuple[Loc, str]]) -> ValidationError:
    """One ValidationError holding several located problems.

    Raised from inside a validator, pydantic merges these line errors into the outer error with their
    locations prefixed, so a model validator can report `setting.baseUrl` or `delegates[2]` exactly and
    report all of them at once. `input` is a placeholder on purpose: the real input may be a secret
    (a header value) and pydantic prints `input_value` in `str(error)`.
    """
    return ValidationError.from_exception_data(
        title,
        [InitErrorDetails(type=issue(message), loc=loc, input="…") for loc, message in found],
    )
