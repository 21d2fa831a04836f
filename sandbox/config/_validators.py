"""Field validators for names, sizes and other small values in perstack.toml.

Each function takes the raw value, raises ValueError with a one-line message that does *not* repeat the
key (the caller's location says where), and returns the value normalised. They are plain functions so the
CLI can validate flags (`--env NAME`, `--memory 2g`) exactly the way the file is validated; `_model.py`
attaches them to fields with `AfterValidator`.

The regexes follow Perstack where Perstack has one (`packages/core/src/constants/constants.ts`, see
shared/reference/perstack.md §1.2) and are stricter where a value reaches a shell, a Dockerfile or an
HTTP header.
"""

from __future__ import annotations

import json
import math
import re

from ._issues import show

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_INSTRUCTION_BYTES",
    "check_description",
    "check_instruction",
    "is_registry_key",
    "size_bytes",
    "validate_command",
    "validate_docker_image",
    "validate_env_name",
    "validate_expert_key",
    "validate_header_name",
    "validate_header_value",
    "validate_json_object_text",
    "validate_path_text",
    "validate_semver",
    "validate_size",
    "validate_skill_name",
    "validate_tag",
    "validate_tool_name",
]

MAX_INSTRUCTION_BYTES = 20 * 1024
MAX_DESCRIPTION_CHARS = 2048
MAX_JSON_SCHEMA_BYTES = 20 * 1024
MAX_EXPERT_KEY_LENGTH = 511
MAX_SKILL_NAME_LENGTH = 128
MAX_ENV_NAME_LENGTH = 255
MAX_COMMAND_LENGTH = 255

_SEMVER = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[\w.-]+)?(?:\+[\w.-]+)?"
_EXPERT_KEY = re.compile(
    rf"((?:@[a-z0-9][a-z0-9_.-]*/)?[a-z0-9][a-z0-9_.-]*)(?:@({_SEMVER})|@([a-z0-9][a-z0-9_.-]*))?", re.ASCII
)
_SEMVER_RE = re.compile(_SEMVER, re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_TAG = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_SKILL_NAME = re.compile(r"[A-Za-z0-9@_][A-Za-z0-9@/._-]*", re.ASCII)
_BARE_COMMAND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*", re.ASCII)
_ABSOLUTE_COMMAND = re.compile(r"(?:/[A-Za-z0-9._+-]+)+", re.ASCII)
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)
_SIZE = re.compile(r"([0-9]+)([bkmg]?)", re.ASCII | re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

# Docker image references, after distribution/reference's grammar (lower-case repository path, optional
# registry host[:port], optional tag, optional digest).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IMAGE_REF = re.compile(
    rf"(?:(?P<domain>(?:{_DOMAIN}|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?)/)?"
    rf"(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
MAX_IMAGE_NAME_LENGTH = 255


def _require_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a string")
    return value


def validate_env_name(value: str) -> str:
    """An environment variable name: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 characters."""
    text = _require_str(value)
    if not _ENV_NAME.fullmatch(text) or len(text) > MAX_ENV_NAME_LENGTH:
        raise ValueError(
            f"{show(text)} is not a valid environment variable name (letters, digits and `_`, "
            "not starting with a digit)"
        )
    return text


def validate_expert_key(value: str) -> str:
    """An Expert key as Perstack defines it: `name`, `@scope/name`, `name@1.2.3` or `name@tag`."""
    text = _require_str(value)
    if len(text) > MAX_EXPERT_KEY_LENGTH or not _EXPERT_KEY.fullmatch(text):
        raise ValueError(
            f"{show(text)} is not a valid Expert key (expected name, @scope/name, name@1.2.3 or name@tag; "
            "lower-case letters, digits, `.`, `_`, `-`)"
        )
    return text


def is_registry_key(key: str) -> bool:
    """Whether an Expert key names a registry Expert (`@scope/name`, `name@1.2.3`, `name@tag`).

    A bare `name` is expected in the local file; Perstack falls back to the registry for it too, which
    is why an unknown bare delegate is only a warning here.
    """
    return "@" in key


def validate_semver(value: str) -> str:
    """A semantic version (`1.0.0`, `1.2.3-beta.1+build`)."""
    text = _require_str(value)
    if not _SEMVER_RE.fullmatch(text):
        raise ValueError(f"{show(text)} is not a semantic version like 1.0.0")
    return text


def validate_tag(value: str) -> str:
    """An Expert tag: `^[a-z0-9][a-z0-9_-]*$`."""
    text = _require_str(value)
    if not _TAG.fullmatch(text):
        raise ValueError(f"{show(text)} is not a valid tag (lower-case letters, digits, `_`, `-`)")
    return text


def validate_skill_name(value: str) -> str:
    """A skill name such as `@perstack/base` or `web-search`.

    Skill names reach MCP tool prefixes, log lines and file names, so only `[A-Za-z0-9@/._-]` is accepted
    (no whitespace, quotes or control characters), at most 128 characters.
    """
    text = _require_str(value)
    if len(text) > MAX_SKILL_NAME_LENGTH:
        raise ValueError(f"{show(text)} is longer than {MAX_SKILL_NAME_LENGTH} characters")
    if not _SKILL_NAME.fullmatch(text):
        raise ValueError(f"{show(text)} is not a valid skill name (letters, digits, `@`, `/`, `.`, `_`, `-`)")
    return text


def validate_tool_name(value: str) -> str:
    """An interactive tool name: `^[A-Za-z0-9_-]{1,64}$` (what the model APIs accept as a tool name)."""
    text = _require_str(value)
    if not _TOOL_NAME.fullmatch(text):
        raise ValueError(f"{show(text)} is not a valid tool name (1-64 letters, digits, `_`, `-`)")
    return text


def validate_command(value: str) -> str:
    """An MCP server command: a bare program name (`npx`, `python3`) or an absolute path.

    Relative paths are refused (they would depend on the sandbox's working directory), and so is anything
    with whitespace, shell metacharacters or a leading `-` (which a launcher would read as an option).
    """
    text = _require_str(value)
    if len(text) > MAX_COMMAND_LENGTH:
        raise ValueError(f"{show(text)} is longer than {MAX_COMMAND_LENGTH} characters")
    if text.startswith("/"):
        segments = text.split("/")[1:]
        if not _ABSOLUTE_COMMAND.fullmatch(text) or any(s in {".", ".."} for s in segments):
            raise ValueError(f"{show(text)} is not a valid absolute command path")
        return text
    if "/" in text:
        raise ValueError(f"{show(text)} is a relative path; use a program name on PATH or an absolute path")
    if not _BARE_COMMAND.fullmatch(text):
        raise ValueError(
            f"{show(text)} is not a valid command (a program name: letters, digits, `.`, `_`, `+`, `-`; "
            "no spaces or shell characters)"
        )
    return text


def check_instruction(value: str) -> str:
    """An Expert instruction: not empty, at most 20 KiB of UTF-8 (Perstack's limit, in bytes here)."""
    text = _require_str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    size = len(text.encode("utf-8"))
    if size > MAX_INSTRUCTION_BYTES:
        raise ValueError(f"is {size} bytes; the limit is {MAX_INSTRUCTION_BYTES} bytes (20 KiB) of UTF-8")
    return text


def check_description(value: str) -> str:
    """A description or rule: at most 2048 characters (Perstack's limit)."""
    text = _require_str(value)
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"is {len(text)} characters; the limit is {MAX_DESCRIPTION_CHARS}")
    return text


def validate_json_object_text(value: str) -> str:
    """`inputJsonSchema`: a string holding a JSON object, at most 20 KiB."""
    text = _require_str(value)
    if len(text.encode("utf-8")) > MAX_JSON_SCHEMA_BYTES:
        raise ValueError(f"is larger than {MAX_JSON_SCHEMA_BYTES} bytes")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(parsed, dict):
        raise ValueError('must be a JSON object (a schema like {"type": "object", ...})')
    return text


def validate_header_name(value: str) -> str:
    """An HTTP header name: RFC 9110 token characters only."""
    text = _require_str(value)
    if not _HEADER_NAME.fullmatch(text):
        raise ValueError(f"{show(text)} is not a valid HTTP header name")
    return text


def validate_header_value(value: str) -> str:
    """An HTTP header value: any text without CR, LF or other control characters except tab.

    The message never echoes the value: header values are usually credentials.
    """
    if not isinstance(value, str):
        raise ValueError("header value must be a string")
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in value):
        raise ValueError("header value contains a line break or control character")
    return value


def validate_path_text(value: str) -> str:
    """A file path written in the config: not empty, no control characters (newlines included)."""
    text = _require_str(value)
    if not text or any(not ch.isprintable() for ch in text):
        raise ValueError(f"{show(text)} is not a usable path (empty or contains control characters)")
    return text


def validate_size(value: str, *, minimum: int = 1, minimum_text: str = "1 byte") -> str:
    """A Docker size like `2g`, `512m`, `1024k` or a byte count, at least `minimum` bytes; lower-cased."""
    text = _require_str(value)
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(
            f"{show(text)} is not a size (a number with an optional b, k, m or g suffix, like 512m)"
        )
    amount = int(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]
    if amount < minimum:
        raise ValueError(f"{show(text)} is too small (the minimum is {minimum_text})")
    return text.lower()


MIN_CPUS, MAX_CPUS = 0.01, 1024.0  # Docker's smallest limit; above any host's CPU count


def validate_cpus(value: float) -> float:
    """A CPU limit Docker enforces: a finite number from 0.01 to 1024.

    Why both bounds: a smaller value becomes `NanoCpus=0`, which Docker reads as *no limit*, and a huge one
    overflows the engine's integer (or Python's, turning infinity into nano-CPUs).
    """
    if math.isnan(value) or value < MIN_CPUS:  # a limit that would round to "unlimited"
        raise ValueError(f"{value} is below the smallest CPU limit ({MIN_CPUS})")
    if value > MAX_CPUS:
        raise ValueError(f"{value} is above the largest CPU limit ({MAX_CPUS:g})")
    return value


def size_bytes(value: str) -> int:
    """The byte count of a size `validate_size` accepted (`10g` -> 10737418240)."""
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{show(value)} is not a size")
    return int(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]


def validate_docker_image(value: str) -> str:
    """A Docker image reference (`debian:bookworm-slim`, `ghcr.io/o/i:1@sha256:…`), strictly parsed."""
    text = _require_str(value)
    match = _IMAGE_REF.fullmatch(text)
    if not match:
        raise ValueError(
            f"{show(text)} is not a valid image reference ([registry/]name[:tag][@digest], lower-case name)"
        )
    domain = match.group("domain")
    name = f"{domain}/{match.group('path')}" if domain else match.group("path")
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        raise ValueError(f"{show(text)}: the image name is longer than {MAX_IMAGE_NAME_LENGTH} characters")
    return text
