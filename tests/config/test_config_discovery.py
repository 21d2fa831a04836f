"""Finding and reading perstack.toml: walk-up discovery, --config paths, remote URLs, caCert paths."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sandbox._errors import ConfigError
from sandbox.config import load_config

MINIMAL = '[experts."a"]\ninstruction = "hi"\n'
RAW = "https://raw.githubusercontent.com/org/repo/main/perstack.toml"


def write(path: Path, text: str = MINIMAL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_walk_up_finds_the_nearest_file_from_a_nested_directory(tmp_path: Path) -> None:
    root = write(tmp_path / "perstack.toml", '[experts."root"]\ninstruction = "x"\n')
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    loaded = load_config(cwd=nested)
    assert loaded.path == root
    assert loaded.base_dir == tmp_path
    assert list(loaded.config.experts) == ["root"]
    assert loaded.source == str(root)
    assert not loaded.remote


def test_walk_up_prefers_the_closest_file(tmp_path: Path) -> None:
    write(tmp_path / "perstack.toml", '[experts."outer"]\ninstruction = "x"\n')
    inner = write(tmp_path / "sub" / "perstack.toml", '[experts."inner"]\ninstruction = "x"\n')
    loaded = load_config(cwd=tmp_path / "sub")
    assert loaded.path == inner
    assert list(loaded.config.experts) == ["inner"]


def test_config_path_is_relative_to_cwd(tmp_path: Path) -> None:
    file = write(tmp_path / "configs" / "team.toml")
    loaded = load_config("configs/team.toml", cwd=tmp_path)
    assert loaded.path == file
    assert loaded.base_dir == file.parent


def test_missing_config_path_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope/perstack.toml", cwd=tmp_path)
    assert str(info.value) == "nope/perstack.toml: config file not found"


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config("dir", cwd=tmp_path)
    assert str(info.value) == "dir: is not a regular file"


def test_nothing_found_walking_up_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(cwd=empty)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"perstack.toml: not found in {empty} or any parent directory (create one, or pass --config PATH)"
    )


def test_errors_name_the_file_as_displayed(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "perstack.toml", 'model = "x"\nmodel = "y"\n')
    with pytest.raises(ConfigError) as info:
        load_config("sub/perstack.toml", cwd=tmp_path)
    assert str(info.value) == "sub/perstack.toml:2:12: invalid TOML: Cannot overwrite a value"


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_bytes(b'model = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    assert str(info.value) == "perstack.toml: is not UTF-8 text (byte 9)"


def test_ca_cert_is_resolved_against_the_config_directory(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "certs" / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    write(tmp_path / "conf" / "perstack.toml", MINIMAL + '[sandbox]\ncaCert = "certs/ca.pem"\n')
    loaded = load_config("conf/perstack.toml", cwd=tmp_path)
    assert loaded.config.sandbox is not None
    assert loaded.config.sandbox.ca_cert == str((tmp_path / "conf" / "certs" / "ca.pem").resolve())


def test_missing_ca_cert_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "perstack.toml", MINIMAL + '[sandbox]\ncaCert = "missing.pem"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    expected = tmp_path.resolve() / "missing.pem"
    assert str(info.value) == f"perstack.toml: sandbox.caCert: file not found: {expected}"


# --- remote configs -----------------------------------------------------------------------------------


def serve(
    body: bytes = MINIMAL.encode(), status: int = 200, headers: dict[str, str] | None = None
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering every request with `body`, and the list of requests it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers=headers)

    return httpx.MockTransport(handler), seen


def test_remote_config_from_raw_githubusercontent(tmp_path: Path) -> None:
    transport, seen = serve()
    loaded = load_config(RAW, cwd=tmp_path, transport=transport)
    assert [str(r.url) for r in seen] == [RAW]
    assert list(loaded.config.experts) == ["a"]
    assert loaded.remote
    assert loaded.source == RAW
    assert loaded.path == Path("perstack.toml")
    assert loaded.base_dir == tmp_path


def test_remote_redirect_is_refused(tmp_path: Path) -> None:
    transport, seen = serve(b"", status=302, headers={"location": "https://evil.example.com/p.toml"})
    with pytest.raises(ConfigError) as info:
        load_config(RAW, cwd=tmp_path, transport=transport)
    assert len(seen) == 1
    assert str(info.value) == (
        f"{RAW}: redirect to `https://evil.example.com/p.toml` refused (remote configs are fetched without "
        "redirects)"
    )


def test_remote_http_error(tmp_path: Path) -> None:
    transport, _ = serve(b"nope", status=404)
    with pytest.raises(ConfigError) as info:
        load_config(RAW, cwd=tmp_path, transport=transport)
    assert str(info.value) == f"{RAW}: fetch failed: HTTP 404"


def test_remote_size_cap(tmp_path: Path) -> None:
    transport, _ = serve(b"#" * (1024 * 1024 + 1))
    with pytest.raises(ConfigError) as info:
        load_config(RAW, cwd=tmp_path, transport=transport)
    assert str(info.value) == f"{RAW}: larger than 1048576 bytes; refusing to load it"


def test_remote_network_failure(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(ConfigError) as info:
        load_config(RAW, cwd=tmp_path, transport=httpx.MockTransport(handler))
    assert str(info.value) == f"{RAW}: fetch failed: ConnectTimeout: timed out"


def test_remote_errors_name_the_url(tmp_path: Path) -> None:
    transport, _ = serve(b'[experts."a"]\ninstruction = "x"\ntags = ["A"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(RAW, cwd=tmp_path, transport=transport)
    assert (
        str(info.value)
        == f'{RAW}: experts."a".tags[0]: `A` is not a valid tag (lower-case letters, digits, `_`, `-`)'
    )


def test_remote_config_may_not_name_a_local_ca_cert(tmp_path: Path) -> None:
    transport, _ = serve((MINIMAL + '[sandbox]\ncaCert = "/etc/passwd"\n').encode())
    with pytest.raises(ConfigError) as info:
        load_config(RAW, cwd=tmp_path, transport=transport)
    assert str(info.value) == f"{RAW}: sandbox.caCert: not allowed in a remote config; pass --ca-cert instead"


@pytest.mark.parametrize(
    "url",
    [
        "http://raw.githubusercontent.com/o/r/main/perstack.toml",
        "https://gist.githubusercontent.com/o/r/raw/perstack.toml",
        "https://raw.githubusercontent.com.evil.com/o/r/perstack.toml",
        "https://user@raw.githubusercontent.com/o/r/perstack.toml",
        "https://raw.githubusercontent.com:8443/o/r/perstack.toml",
        "ftp://raw.githubusercontent.com/o/r/perstack.toml",
        "https://evil.com\\@raw.githubusercontent.com/perstack.toml",
    ],
)
def test_other_urls_are_refused_without_fetching(tmp_path: Path, url: str) -> None:
    transport, seen = serve()
    with pytest.raises(ConfigError) as info:
        load_config(url, cwd=tmp_path, transport=transport)
    assert seen == []
    assert str(info.value) == f"{url}: remote configs must be https://raw.githubusercontent.com/... URLs"
