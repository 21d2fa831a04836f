"""Finding, fetching, parsing and validating perstack.toml (Perstack's discovery rules, §1.1).

Where the config comes from, in Perstack's order: `--config PATH` (relative to the working directory),
or an `https://raw.githubusercontent.com/...` URL (fetched without following redirects), or the first
`perstack.toml` found walking up from the working directory to `/`.

Every problem is collected before anything is raised: TOML syntax (one issue, the parser stops there),
then unknown keys and every validation error together, as one ConfigError with one line per issue.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import ValidationError

from sandbox._errors import ConfigError, ConfigIssue

from ._errors_format import render_path, toml_error_issue, validation_issues
from ._issues import show, with_suggestion
from ._keys import check_keys

if TYPE_CHECKING:
    import httpx  # imported by _fetch only: ~80 ms that a local perstack.toml never needs
from ._model import PerstackConfig
from ._validators import is_registry_key

__all__ = ["CONFIG_FILE_NAME", "REMOTE_CONFIG_HOST", "LoadedConfig", "load_config", "parse_config_text"]

CONFIG_FILE_NAME = "perstack.toml"
REMOTE_CONFIG_HOST = "raw.githubusercontent.com"
REMOTE_TIMEOUT_SECONDS = 30.0
MAX_REMOTE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and where it came from.

    - `path`: the file read. For a remote config there is no local file: `path` is just the file name
      from the URL (`perstack.toml`), and `source` holds the URL.
    - `base_dir`: what relative paths in the config are resolved against (`[sandbox].caCert`): the file's
      directory, or the working directory for a remote config.
    - `warnings`: issues that did not stop loading (dropped or misplaced keys, unknown local delegates).
    - `source`: the absolute file path or the URL, for messages.
    """

    path: Path
    config: PerstackConfig
    warnings: tuple[ConfigIssue, ...]
    base_dir: Path
    source: str = ""

    @property
    def remote(self) -> bool:
        """Whether the config was fetched from a URL rather than read from a local file."""
        return self.source.startswith("https://")


def _delegate_warnings(config: PerstackConfig, file: str) -> list[ConfigIssue]:
    """Bare delegate names that are not defined in this file.

    A warning, not an error: Perstack resolves such a name from the registry at run time, and real
    configs rely on it (Perstack's own `e2e/experts/error-handling.toml` delegates to a missing Expert on
    purpose). The planner decides whether a reachable one stops the run. Registry-shaped keys
    (`@scope/name`, `name@1.2.3`, `name@tag`) are the planner's to report. No recursion: cycles are legal.
    """
    found: list[ConfigIssue] = []
    for key, expert in config.experts.items():
        for index, delegate in enumerate(expert.delegates):
            if delegate in config.experts or is_registry_key(delegate):
                continue
            message = with_suggestion(
                f"unknown local delegate {show(delegate)}: no such Expert in this file "
                "(Perstack would look it up in the registry)",
                delegate,
                config.experts,
            )
            path = render_path(("experts", key, "delegates", index))
            found.append(ConfigIssue(file=file, path=path, message=message, severity="warning"))
    return found


_PROVIDER_NATIVE = (
    ("provider_tools", "providerTools"),
    ("provider_skills", "providerSkills"),
    ("provider_tool_options", "providerToolOptions"),
)


def _provider_native_warnings(config: PerstackConfig, file: str) -> list[ConfigIssue]:
    """Provider-native tools and Anthropic agent skills are accepted (real configs use them) but no runtime
    here passes them to the provider yet: say so once per key instead of running without them silently."""
    found: list[ConfigIssue] = []
    for key, expert in config.experts.items():
        for attr, alias in _PROVIDER_NATIVE:
            if getattr(expert, attr):
                found.append(
                    ConfigIssue(
                        file=file,
                        path=render_path(("experts", key, alias), map_aliases=False),
                        message="accepted but not used: provider-native tools and skills are not passed to "
                        "the provider by this version of sandbox; the Expert runs without them",
                        severity="warning",
                    )
                )
    return found


def parse_config_text(
    text: str, file_label: str, *, base_dir: Path | None = None
) -> tuple[PerstackConfig, tuple[ConfigIssue, ...]]:
    """Parse and validate perstack.toml text; returns the config and its warnings.

    `file_label` names the file in messages. `base_dir`, when given, resolves relative paths in the
    config (`[sandbox].caCert`). Raises ConfigError listing every error found.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([toml_error_issue(exc, file_label)]) from None
    cleaned, key_issues = check_keys(raw)
    errors = [
        ConfigIssue(file=file_label, path=render_path(loc, map_aliases=False), message=message)
        for loc, message, severity in key_issues
        if severity == "error"
    ]
    warnings = [
        ConfigIssue(
            file=file_label, path=render_path(loc, map_aliases=False), message=message, severity="warning"
        )
        for loc, message, severity in key_issues
        if severity == "warning"
    ]
    context = {"base_dir": base_dir} if base_dir is not None else None
    config: PerstackConfig | None = None
    try:
        config = PerstackConfig.model_validate(cleaned, context=context)
    except ValidationError as exc:
        errors.extend(validation_issues(exc, file_label))
    if errors or config is None:
        raise ConfigError(errors)
    warnings.extend(_delegate_warnings(config, file_label))
    warnings.extend(_provider_native_warnings(config, file_label))
    return config, tuple(warnings)


def _one_line_error(file: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(file=file, path="", message=message)])


def _display(path: Path, cwd: Path) -> str:
    """`sub/perstack.toml` when under the working directory, else the absolute path."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _find(cwd: Path) -> Path:
    for directory in (cwd, *cwd.parents):
        candidate = directory / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    raise _one_line_error(
        CONFIG_FILE_NAME, f"not found in {cwd} or any parent directory (create one, or pass --config PATH)"
    )


def _read_local(path: Path, label: str) -> str:
    if not path.exists():
        raise _one_line_error(label, "config file not found")
    if not path.is_file():
        raise _one_line_error(label, "is not a regular file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _one_line_error(label, f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise _one_line_error(label, f"cannot be read: {exc.strerror or exc}") from None


def _is_url(value: str) -> bool:
    return "://" in value or value.lower().startswith(("http:", "https:"))


def _check_remote_url(url: str) -> None:
    """Only `https://raw.githubusercontent.com/...`, like Perstack: a fixed host, no credentials or ports."""
    refusal = _one_line_error(
        url if url.isprintable() else show(url),
        f"remote configs must be https://{REMOTE_CONFIG_HOST}/... URLs",
    )
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in url):
        raise refusal
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refusal from None
    if parts.scheme.lower() != "https" or "@" in parts.netloc or port not in (None, 443):
        raise refusal
    if (parts.hostname or "").rstrip(".").lower() != REMOTE_CONFIG_HOST:
        raise refusal


def _fetch(url: str, transport: httpx.BaseTransport | None) -> str:
    """GET `url` with no redirects, a 30 s timeout and a 1 MiB cap; any other outcome is one-line error."""
    import httpx

    try:
        with (
            httpx.Client(
                transport=transport, follow_redirects=False, timeout=REMOTE_TIMEOUT_SECONDS
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.is_redirect:
                target = response.headers.get("location", "?")
                raise _one_line_error(
                    url, f"redirect to {show(target)} refused (remote configs are fetched without redirects)"
                )
            if response.status_code != 200:
                raise _one_line_error(url, f"fetch failed: HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_REMOTE_BYTES:
                    raise _one_line_error(url, f"larger than {MAX_REMOTE_BYTES} bytes; refusing to load it")
    except httpx.HTTPError as exc:
        raise _one_line_error(url, f"fetch failed: {type(exc).__name__}: {exc}") from None
    try:
        return bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _one_line_error(url, f"is not UTF-8 text (byte {exc.start})") from None


def _check_ca_cert(config: PerstackConfig, label: str, remote: bool) -> None:
    settings = config.sandbox
    if settings is None or settings.ca_cert is None:
        return
    if remote:
        # A fetched file must not choose which local file gets copied into the sandbox image.
        raise ConfigError(
            [ConfigIssue(label, "sandbox.caCert", "not allowed in a remote config; pass --ca-cert instead")]
        )
    if not Path(settings.ca_cert).is_file():
        raise ConfigError([ConfigIssue(label, "sandbox.caCert", f"file not found: {settings.ca_cert}")])


def load_config(
    path: str | Path | None = None,
    *,
    cwd: Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> LoadedConfig:
    """Find, read and validate perstack.toml.

    **Parameters:**

    - `path`: `--config` value: a file path (relative to `cwd`) or an https://raw.githubusercontent.com
      URL (as a `str`). None searches `cwd` and its parents for `perstack.toml`.
    - `cwd`: the working directory; defaults to the process's.
    - `transport`: the httpx transport for remote configs (tests pass `httpx.MockTransport`).

    Raises ConfigError (one line per issue) for a missing file, a refused URL, bad TOML or invalid content.
    """
    workdir = (cwd or Path.cwd()).absolute()
    if isinstance(path, str) and _is_url(path):
        _check_remote_url(path)
        text = _fetch(path, transport)
        config, warnings = parse_config_text(text, path, base_dir=workdir)
        _check_ca_cert(config, path, remote=True)
        name = PurePosixPath(urlsplit(path).path).name or CONFIG_FILE_NAME
        return LoadedConfig(path=Path(name), config=config, warnings=warnings, base_dir=workdir, source=path)
    if path is not None:
        file = Path(path).expanduser()
        file = file if file.is_absolute() else workdir / file
    else:
        file = _find(workdir)
    label = _display(file, workdir)
    text = _read_local(file, label)
    config, warnings = parse_config_text(text, label, base_dir=file.parent)
    _check_ca_cert(config, label, remote=False)
    return LoadedConfig(path=file, config=config, warnings=warnings, base_dir=file.parent, source=str(file))
