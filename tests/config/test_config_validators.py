"""The validator helpers the CLI reuses, package parsing, and a property test for normalize_domain."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sandbox.config import (
    InteractiveSkill,
    McpSseSkill,
    McpStdioSkill,
    PackageSpec,
    normalize_domain,
    package_spec,
    parse_add_host,
    parse_host_port,
    parse_package,
    validate_env_name,
    validate_expert_key,
)
from sandbox.config._net import parse_ip_literal
from sandbox.config._validators import validate_command, validate_docker_image, validate_size

# What a domain that reaches squid.conf may look like: an optional leading `*.`, then two or more
# LDH labels of at most 63 characters. No whitespace, quotes, `#`, `;`, newline or anything else.
SAFE_DOMAIN = re.compile(
    r"(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+", re.ASCII
)


@settings(max_examples=2000, database=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet="abcXYZ019-.*_ \n\t#;:/'\"[]", max_size=80),
        st.from_regex(r"\A(\*\.)?[a-zA-Z0-9-]{1,70}(\.[a-zA-Z0-9-]{1,70}){0,4}\.?\Z"),
    )
)
@example("evil.com\nhttp_access allow all")
@example("*.EXAMPLE.com.")
@example("0x7f.0.0.1")
def test_normalize_domain_returns_safe_names_or_raises(value: str) -> None:
    try:
        result = normalize_domain(value)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert SAFE_DOMAIN.fullmatch(result), result
    assert len(result) <= 253
    assert result == result.lower()
    assert parse_ip_literal(result.removeprefix("*.")) is None
    assert not any(label.startswith("xn--") for label in result.split("."))
    assert normalize_domain(result) == result  # idempotent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("*.GitHub.com", "*.github.com"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_normalize_domain_accepts(value: str, expected: str) -> None:
    assert normalize_domain(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 64 + ".com",
        "a..com",
        ".a.com",
        "a.com..",
        "-a.com",
        "a-.com",
        "*",
        "*.",
        "a.*.com",
        "é.com",
        "a_b.com",
    ],
)
def test_normalize_domain_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        normalize_domain(value)


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_ip_literals_in_every_spelling(value: str, address: str) -> None:
    assert str(parse_ip_literal(value)) == address


@pytest.mark.parametrize(
    "value", ["example.com", "256.256.256.256", "1.2.3.4.5", "08.1.1.1", "1.2.3.x", "::g"]
)
def test_not_ip_literals(value: str) -> None:
    assert parse_ip_literal(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("db:5432", ("db", 5432)),
        ("API.example.com:443", ("api.example.com", 443)),
    ],
)
def test_parse_host_port(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value) == expected


NAMES_ONLY = (
    "the proxy opens names, not addresses; name it with --add-host NAME:IP (or [sandbox] addHosts) "
    "and open NAME:PORT"
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("db", "`db`: expected host:port"),
        ("db:0", "`db:0`: port must be a number from 1 to 65535"),
        ("db:65536", "`db:65536`: port must be a number from 1 to 65535"),
        ("db:+80", "`db:+80`: port must be a number from 1 to 65535"),
        ("fd00::1:80", "`fd00::1:80`: " + NAMES_ONLY),
        ("127.1:80", "`127.1:80`: " + NAMES_ONLY),
        ("10.0.0.1:8080", "`10.0.0.1:8080`: " + NAMES_ONLY),
        ("d b:80", "`d b:80`: `d b` is not a valid host name: contains a space"),
        ("[10.0.0.1]:80", "`[10.0.0.1]:80`: " + NAMES_ONLY),
        ("[fd00::1]:80", "`[fd00::1]:80`: " + NAMES_ONLY),
    ],
)
def test_parse_host_port_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_host_port(value)
    assert str(info.value) == message


def test_parse_add_host() -> None:
    assert parse_add_host("DB:10.0.0.2") == ("db", "10.0.0.2")
    assert parse_add_host("db:[fd00::2]") == ("db", "fd00::2")
    assert parse_add_host("db:FD00:0::2") == ("db", "fd00::2")
    for bad, message in [
        ("db", "`db`: expected name:ip"),
        ("db:x", "`db:x`: `x` is not an IP address"),
        ("db:10.1", "`db:10.1`: write the address as 10.0.0.1"),
        ("a;b:1.2.3.4", "`a;b:1.2.3.4`: `a;b` is not a valid host name: contains `;`"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_add_host(bad)
        assert str(info.value) == message


def test_env_names_and_expert_keys() -> None:
    assert validate_env_name("_A1") == "_A1"
    for bad in ["", "1A", "A-B", "A B", "A=B", "Ä"]:
        with pytest.raises(ValueError):
            validate_env_name(bad)
    for good in ["name", "@scope/name", "name@1.2.3", "name@1.2.3-beta.1+b", "name@latest", "a.b_c-d"]:
        assert validate_expert_key(good) == good
    for bad in ["Name", "@scope/", "name@", "name@Latest", "a/b", "@s/n/x", " name"]:
        with pytest.raises(ValueError):
            validate_expert_key(bad)


@pytest.mark.parametrize("value", ["npx", "python3", "uvx", "/usr/local/bin/my-server", "node", "c++"])
def test_commands_accepted(value: str) -> None:
    assert validate_command(value) == value


@pytest.mark.parametrize(
    "value", ["", "npx -y", "-rf", "bin/x", "/usr/../bin/sh", "a;b", "$(x)", "a\nb", "/"]
)
def test_commands_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        validate_command(value)


@pytest.mark.parametrize(
    "value",
    [
        "debian:bookworm-slim",
        "node:22-bookworm-slim",
        "ghcr.io/org/image:1.2",
        "localhost:5000/img",
        "registry.example.com:5000/team/app@sha256:" + "a" * 64,
        "busybox",
    ],
)
def test_docker_images_accepted(value: str) -> None:
    assert validate_docker_image(value) == value


@pytest.mark.parametrize(
    "value", ["", "UPPER", "img:tag with space", "img;rm", "img:" + "t" * 129, "/img", "img@sha256:xyz"]
)
def test_docker_images_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        validate_docker_image(value)


def test_sizes() -> None:
    assert validate_size("2G") == "2g"
    assert validate_size("1048576") == "1048576"
    with pytest.raises(ValueError):
        validate_size("6m", minimum=7 * 1024 * 1024)
    for bad in ["", "2 g", "2gb", "-1", "1.5g"]:
        with pytest.raises(ValueError):
            validate_size(bad)


# --- packages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "command", "spec"),
    [
        ("@perstack/base", "npx", PackageSpec("npm", "@perstack/base")),
        ("@perstack/base@0.0.34", "npx", PackageSpec("npm", "@perstack/base", "0.0.34")),
        ("exa-mcp-server@^1.2.0", "npx", PackageSpec("npm", "exa-mcp-server", "^1.2.0")),
        ("firecrawl-mcp@latest", "/usr/bin/npx", PackageSpec("npm", "firecrawl-mcp", "latest")),
        ("mcp-server-time", "uvx", PackageSpec("pypi", "mcp-server-time")),
        ("mcp-server-time==2025.1.0", "uvx", PackageSpec("pypi", "mcp-server-time", "2025.1.0")),
        ("Mcp_Server.Fetch@1.0", "python3", PackageSpec("pypi", "Mcp_Server.Fetch", "1.0")),
        ("tool", "mytool", PackageSpec("npm", "tool")),
        ("My.Tool", "mytool", PackageSpec("pypi", "My.Tool")),
    ],
)
def test_parse_package(value: str, command: str, spec: PackageSpec) -> None:
    assert parse_package(value, command) == spec


@pytest.mark.parametrize(
    ("value", "command"),
    [
        ("; rm -rf /", "npx"),
        ("$(x)", "uvx"),
        ("foo bar", "npx"),
        ("../x", "npx"),
        ("./x", "uvx"),
        ("Foo", "npx"),
        (".hidden", "npx"),
        ("_under", "npx"),
        ("git+https://github.com/x/y", "npx"),
        ("file:../x", "npx"),
        ("x@1.0 || 2.0", "npx"),
        ("x@>=1.0", "npx"),
        ("pkg[extra]", "uvx"),
        ("pkg==1.0;rm", "uvx"),
        ("-pkg", "uvx"),
        ("a" * 215, "npx"),
        ("x@", "npx"),
        ("", "npx"),
        ("foo bar", "mytool"),
    ],
)
def test_parse_package_rejects(value: str, command: str) -> None:
    with pytest.raises(ValueError):
        parse_package(value, command)


def stdio(command: str, *, package: str | None = None, args: tuple[str, ...] | None = None) -> McpStdioSkill:
    data: dict[str, object] = {"type": "mcpStdioSkill", "command": command}
    if package is not None:
        data["packageName"] = package
    if args is not None:
        data["args"] = args
    return McpStdioSkill.model_validate(data)


@pytest.mark.parametrize(
    ("command", "args", "spec"),
    [
        ("npx", ("-y", "exa-mcp-server"), PackageSpec("npm", "exa-mcp-server")),
        ("npx", ("--yes", "@scope/pkg@1.2.3", "--port", "1"), PackageSpec("npm", "@scope/pkg", "1.2.3")),
        ("npx", ("-p", "@scope/cli@2.0.0", "cli-bin", "serve"), PackageSpec("npm", "@scope/cli", "2.0.0")),
        ("npx", ("--package=pkg", "bin"), PackageSpec("npm", "pkg")),
        ("npx", ("--registry", "https://r.example.com", "pkg"), PackageSpec("npm", "pkg")),
        ("npx", ("-y", "--", "pkg"), PackageSpec("npm", "pkg")),
        ("npm", ("exec", "-y", "pkg"), PackageSpec("npm", "pkg")),
        ("uvx", ("mcp-server-fetch",), PackageSpec("pypi", "mcp-server-fetch")),
        (
            "uvx",
            ("--from", "mcp-server-git==1.2", "mcp-server-git", "--repo", "."),
            PackageSpec("pypi", "mcp-server-git", "1.2"),
        ),
        ("uvx", ("--python", "3.12", "tool@latest"), PackageSpec("pypi", "tool", "latest")),
        ("uv", ("tool", "run", "tool"), PackageSpec("pypi", "tool")),
    ],
)
def test_package_spec_from_args(command: str, args: tuple[str, ...], spec: PackageSpec) -> None:
    assert package_spec(stdio(command, args=args)) == spec


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("node", ("server.js",)),
        ("python", ("-m", "server")),
        ("npx", ()),
        ("npx", ("-y",)),
        ("uvx", ("--python", "3.12")),
    ],
)
def test_package_spec_none(command: str, args: tuple[str, ...]) -> None:
    assert package_spec(stdio(command, args=args)) is None


def test_package_spec_of_other_skills_and_package_name() -> None:
    assert package_spec(stdio("npx", package="@perstack/base@0.0.34")) == PackageSpec(
        "npm", "@perstack/base", "0.0.34"
    )
    assert package_spec(stdio("uvx", package="mcp-server-time")) == PackageSpec("pypi", "mcp-server-time")
    sse = McpSseSkill.model_validate({"type": "mcpSseSkill", "endpoint": "https://x.example.com/sse"})
    assert package_spec(sse) is None
    assert package_spec(InteractiveSkill.model_validate({"type": "interactiveSkill"})) is None


@pytest.mark.parametrize(
    ("command", "args"), [("npx", ("-y", "../local-server")), ("uvx", ("--from", "git+https://x/y", "t"))]
)
def test_package_spec_rejects_non_registry_packages_in_args(command: str, args: tuple[str, ...]) -> None:
    skill = stdio(command, args=args)  # loads: args are not validated at load time
    with pytest.raises(ValueError):
        package_spec(skill)
