"""Bad perstack.toml inputs and the exact one-line messages they produce (file, key path, problem).

Each case is a small TOML document and the complete text of the ConfigError (one line per issue), so a
change in wording, path rendering or issue collection shows up here as a diff.
"""

# Expected messages stay whole, one string per message line, so a failing case reads like the CLI output.
# ruff: noqa: E501

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from sandbox._errors import ConfigError
from sandbox.config import McpSseSkill, McpStdioSkill, PerstackConfig, parse_config_text
from sandbox.config._errors_format import render_path, validation_issues

EXPERT = '[experts."a"]\ninstruction = "hi"\n'
STDIO = 'type = "mcpStdioSkill"\ncommand = "npx"\npackageName = "x"\n'
P = 'perstack.toml: experts."a".skills."s".'


def skill(body: str, name: str = "s") -> str:
    return f'{EXPERT}[experts."a".skills."{name}"]\n{body}'


def domains(*values: str) -> str:
    quoted = ", ".join(f'"{v}"' for v in values)
    return skill(f"{STDIO}allowedDomains = [{quoted}]\n")


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "perstack.toml")
    return str(info.value)


CASES: list[tuple[str, str, list[str]]] = [
    # --- unknown keys -----------------------------------------------------------------------------
    (
        "unknown-key-did-you-mean",
        skill(f'{STDIO}allowedDomain = ["a.com"]\n'),
        [P + "allowedDomain: unknown key; did you mean `allowedDomains`?"],
    ),
    (
        "snake-case-key-did-you-mean",
        skill('type = "mcpStdioSkill"\ncommand = "npx"\npackage_name = "x"\n'),
        [
            P + "package_name: unknown key; did you mean `packageName`?",
            P[:-1] + ": needs `packageName` (a package to run) or `args` (the full argv)",
        ],
    ),
    (
        "unknown-top-level-key-lists-valid-keys",
        'modle = "x"\nfoo = 1\n',
        [
            "perstack.toml: modle: unknown key; did you mean `model`?",
            "perstack.toml: foo: unknown key (expected one of `envPath`, `experts`, `maxRetries`, `maxSteps`, "
            "`model`, `perstackApiBaseUrl`, `perstackBaseSkillCommand`, `provider`, `reasoningBudget`, "
            "`runtime`, `sandbox`, `timeout`)",
        ],
    ),
    (
        "unknown-sandbox-key",
        '[sandbox]\nmemroy = "2g"\n',
        ["perstack.toml: sandbox.memroy: unknown key; did you mean `memory`?"],
    ),
    # --- domains ----------------------------------------------------------------------------------
    (
        "domain-ip-spellings",
        domains("ok.com", "127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "::1", "[::1]", "1.2.3.4."),
        [
            P + "allowedDomains[1]: `127.0.0.1` is an IP address, not a host name",
            P + "allowedDomains[2]: `127.1` is an IP address, not a host name",
            P + "allowedDomains[3]: `2130706433` is an IP address, not a host name",
            P + "allowedDomains[4]: `0x7f.0.0.1` is an IP address, not a host name",
            P + "allowedDomains[5]: `::1` is an IP address, not a host name",
            P + "allowedDomains[6]: `[::1]` is an IP address, not a host name",
            P + "allowedDomains[7]: `1.2.3.4.` is an IP address, not a host name",
        ],
    ),
    (
        "domain-numeric-last-label",
        domains("example.123"),
        [
            P
            + "allowedDomains[0]: `example.123` looks like an IP address (its last label is numeric), not a host name"
        ],
    ),
    (
        "domain-wildcards",
        domains("*.*.x.com", "foo*.x.com", "*.com"),
        [
            P
            + "allowedDomains[0]: `*.*.x.com` is not a valid host name: only a single leading `*.` wildcard is allowed",
            P
            + "allowedDomains[1]: `foo*.x.com` is not a valid host name: only a single leading `*.` wildcard is allowed",
            P + "allowedDomains[2]: `*.com` needs at least two labels (like example.com)",
        ],
    ),
    (
        "domain-punycode",
        domains("xn--bcher-kva.de"),
        [
            P
            + "allowedDomains[0]: `xn--bcher-kva.de` is a punycode (xn--) name; internationalised names are not accepted"
        ],
    ),
    (
        "domain-squid-injection",
        domains(
            "evil.com\\nhttp_access allow all", "http_access allow all", "a.com;", "a.com#x", '\\"q\\".com'
        ),
        [
            P
            + "allowedDomains[0]: `evil.com\\nhttp_access allow all` is not a valid host name: contains a newline",
            P + "allowedDomains[1]: `http_access allow all` is not a valid host name: contains a space",
            P + "allowedDomains[2]: `a.com;` is not a valid host name: contains `;`",
            P + "allowedDomains[3]: `a.com#x` is not a valid host name: contains `#`",
            P + 'allowedDomains[4]: `\\"q\\".com` is not a valid host name: contains a quote',
        ],
    ),
    (
        "domain-url-and-port",
        domains("https://x.com", "x.com/p", "x.com:443"),
        [
            P + "allowedDomains[0]: `https://x.com` is not a valid host name: contains `/`",
            P + "allowedDomains[1]: `x.com/p` is not a valid host name: contains `/`",
            P + "allowedDomains[2]: `x.com:443` is not a valid host name: contains `:`",
        ],
    ),
    (
        "domain-too-long",
        domains("a" * 296 + ".com"),
        [P + "allowedDomains[0]: `" + "a" * 79 + "…` is longer than 253 characters"],
    ),
    (
        "domain-single-label",
        domains("localhost"),
        [P + "allowedDomains[0]: `localhost` needs at least two labels (like example.com)"],
    ),
    (
        "provider-tool-options-domains",
        EXPERT + '[experts."a".providerToolOptions.webSearch]\nmaxUses = 0\nallowedDomains = ["10.0.0.1"]\n'
        '[experts."a".providerToolOptions.webFetc]\n',
        [
            'perstack.toml: experts."a".providerToolOptions.webSearch.maxUses: must be a positive integer',
            'perstack.toml: experts."a".providerToolOptions.webSearch.allowedDomains[0]: `10.0.0.1` is an IP '
            "address, not a host name",
            'perstack.toml: experts."a".providerToolOptions.webFetc: unknown provider tool option; did you mean '
            "`webFetch`?",
        ],
    ),
    # --- packages, command, args ------------------------------------------------------------------
    (
        "package-shell-injection",
        skill('type = "mcpStdioSkill"\ncommand = "npx"\npackageName = "; rm -rf /"\n')
        + '[experts."a".skills."t"]\ntype = "mcpStdioSkill"\ncommand = "npx"\npackageName = "$(x)"\n',
        [
            P + "packageName: `; rm -rf /` is not a valid npm package name (lower-case letters, digits, `-`, "
            "`.`, `_`, optionally @scope/; not starting with `.` or `_`)",
            'perstack.toml: experts."a".skills."t".packageName: `$(x)` is not a valid npm package name '
            "(lower-case letters, digits, `-`, `.`, `_`, optionally @scope/; not starting with `.` or `_`)",
        ],
    ),
    (
        "package-space-and-path",
        skill('type = "mcpStdioSkill"\ncommand = "npx"\npackageName = "foo bar"\n')
        + '[experts."a".skills."t"]\ntype = "mcpStdioSkill"\ncommand = "npx"\npackageName = "../x"\n',
        [
            P + "packageName: `foo bar` is not a valid npm package name (lower-case letters, digits, `-`, "
            "`.`, `_`, optionally @scope/; not starting with `.` or `_`)",
            'perstack.toml: experts."a".skills."t".packageName: `../x` is not a valid npm package name '
            "(lower-case letters, digits, `-`, `.`, `_`, optionally @scope/; not starting with `.` or `_`)",
        ],
    ),
    (
        "package-uppercase-npm",
        skill('type = "mcpStdioSkill"\ncommand = "npx"\npackageName = "Foo"\n'),
        [P + "packageName: `Foo` is not a valid npm package name: npm names are lower-case"],
    ),
    (
        "package-pypi-version-injection",
        skill('type = "mcpStdioSkill"\ncommand = "uvx"\npackageName = "mcp-server-time==1.0; rm"\n'),
        [P + "packageName: `mcp-server-time==1.0; rm`: `1.0; rm` is not a valid PyPI version"],
    ),
    (
        "package-and-args-both",
        skill(f'{STDIO}args = ["x"]\n'),
        [P + "args: set either `packageName` or `args`, not both"],
    ),
    (
        "package-and-args-neither",
        skill('type = "mcpStdioSkill"\ncommand = "npx"\n'),
        [P[:-1] + ": needs `packageName` (a package to run) or `args` (the full argv)"],
    ),
    (
        "command-shell-and-relative",
        skill('type = "mcpStdioSkill"\ncommand = "npx; rm"\nargs = []\n')
        + '[experts."a".skills."t"]\ntype = "mcpStdioSkill"\ncommand = "./bin/x"\nargs = []\n',
        [
            P + "command: `npx; rm` is not a valid command (a program name: letters, digits, `.`, `_`, `+`, "
            "`-`; no spaces or shell characters)",
            'perstack.toml: experts."a".skills."t".command: `./bin/x` is a relative path; use a program name '
            "on PATH or an absolute path",
        ],
    ),
    # --- env names, types -------------------------------------------------------------------------
    (
        "env-names",
        skill(f'{STDIO}requiredEnv = ["GOOD", "BAD-NAME", "1X"]\n'),
        [
            P
            + "requiredEnv[1]: `BAD-NAME` is not a valid environment variable name (letters, digits and `_`, "
            "not starting with a digit)",
            P + "requiredEnv[2]: `1X` is not a valid environment variable name (letters, digits and `_`, "
            "not starting with a digit)",
        ],
    ),
    (
        "strict-bool",
        skill(f'{STDIO}lazyInit = "yes"\n'),
        [P + "lazyInit: must be true or false (got a string)"],
    ),
    (
        "top-level-values",
        'runtime = "dokcer"\nreasoningBudget = "mid"\nmaxSteps = 0\ntimeout = "5"\n'
        'perstackApiBaseUrl = "http://api.perstack.ai"\n',
        [
            "perstack.toml: runtime: `dokcer` is not a valid runtime (expected `perstack`, `local`, `docker`, "
            "`cursor`, `claude-code`, `gemini`, `codex`, `opencode`, `copilot`); did you mean `docker`?",
            "perstack.toml: reasoningBudget: `mid` is not a valid reasoningBudget (expected `none`, `minimal`, "
            "`low`, `medium`, `high` or a non-negative integer)",
            "perstack.toml: maxSteps: must be at least 1",
            "perstack.toml: timeout: must be an integer (got a string)",
            "perstack.toml: perstackApiBaseUrl: `http://api.perstack.ai` must start with https://",
        ],
    ),
    # --- SSE endpoints ----------------------------------------------------------------------------
    (
        "sse-endpoints",
        EXPERT
        + "".join(
            f'[experts."a".skills."e{i}"]\ntype = "mcpSseSkill"\nendpoint = "{url}"\n'
            for i, url in enumerate(
                [
                    "http://x.com/sse",
                    "https://10.0.0.1/",
                    "https://[::1]/",
                    "https://localhost/",
                    "https://1.1.1.1/",
                ]
            )
        ),
        [
            'perstack.toml: experts."a".skills."e0".endpoint: `http://x.com/sse` must start with https://',
            'perstack.toml: experts."a".skills."e1".endpoint: `https://10.0.0.1/` points at a private address',
            'perstack.toml: experts."a".skills."e2".endpoint: `https://[::1]/` points at a loopback address',
            'perstack.toml: experts."a".skills."e3".endpoint: `https://localhost/` points at localhost',
            'perstack.toml: experts."a".skills."e4".endpoint: `https://1.1.1.1/` uses an IP address; use a host '
            "name (the proxy allows names only)",
        ],
    ),
    # --- providers --------------------------------------------------------------------------------
    (
        "provider-base-url-http",
        '[provider]\nproviderName = "anthropic"\nsetting = { baseUrl = "http://gw.example.com" }\n',
        [
            "perstack.toml: provider.setting.baseUrl: `http://gw.example.com` must start with https:// "
            "(only ollama may use http://)"
        ],
    ),
    (
        "provider-setting-keys-and-headers",
        '[provider]\nproviderName = "openai"\n[provider.setting]\nbaseURL = "https://x.com"\n'
        'headers = { "X-Ok" = "v", "Bad Header" = "v", "X-Inject" = "secret-token\\r\\nEvil: 1" }\n',
        [
            "perstack.toml: provider.setting.baseURL: unknown setting for openai (accepted: `baseUrl`, "
            "`headers`, `organization`, `project`, `name`); did you mean `baseUrl`?",
            'perstack.toml: provider.setting.headers."Bad Header": `Bad Header` is not a valid HTTP header name',
            'perstack.toml: provider.setting.headers."X-Inject": header value contains a line break or control '
            "character",
        ],
    ),
    (
        "provider-name-typo",
        '[provider]\nproviderName = "antropic"\n',
        [
            "perstack.toml: provider.providerName: `antropic` is not a valid providerName (expected "
            "`anthropic`, `openai`, `google`, `azure-openai`, `amazon-bedrock`, `google-vertex`, `deepseek`, "
            "`ollama`); did you mean `anthropic`?"
        ],
    ),
    (
        "provider-settings-per-provider",
        '[provider]\nproviderName = "amazon-bedrock"\nsetting = { region = "us east", baseUrl = "https://x.com" }\n',
        [
            "perstack.toml: provider.setting.region: `us east` is not a valid host name: contains a space",
            "perstack.toml: provider.setting.baseUrl: unknown setting for amazon-bedrock (accepted: `region`)",
        ],
    ),
    # --- sizes ------------------------------------------------------------------------------------
    (
        "oversize-instruction-and-description",
        '[experts."a"]\ninstruction = "' + "é" * 10241 + '"\ndescription = "' + "x" * 2049 + '"\n',
        [
            'perstack.toml: experts."a".description: is 2049 characters; the limit is 2048',
            'perstack.toml: experts."a".instruction: is 20482 bytes; the limit is 20480 bytes (20 KiB) of UTF-8',
        ],
    ),
    (
        "empty-instruction-and-missing-instruction",
        '[experts."a"]\ninstruction = "  "\n[experts."b"]\ndescription = "no instruction"\n',
        [
            'perstack.toml: experts."a".instruction: must not be empty',
            'perstack.toml: experts."b".instruction: is required but missing',
        ],
    ),
    # --- keys, tags, versions, skills -------------------------------------------------------------
    (
        "expert-and-delegate-keys",
        '[experts."A"]\ninstruction = "x"\nversion = "1.0"\ndelegates = ["ok", "Bad Key"]\ntags = ["Bad"]\n',
        [
            'perstack.toml: experts."A": `A` is not a valid Expert key (expected name, @scope/name, name@1.2.3 '
            "or name@tag; lower-case letters, digits, `.`, `_`, `-`)",
            'perstack.toml: experts."A".version: `1.0` is not a semantic version like 1.0.0',
            'perstack.toml: experts."A".delegates[1]: `Bad Key` is not a valid Expert key (expected name, '
            "@scope/name, name@1.2.3 or name@tag; lower-case letters, digits, `.`, `_`, `-`)",
            'perstack.toml: experts."A".tags[0]: `Bad` is not a valid tag (lower-case letters, digits, `_`, `-`)',
        ],
    ),
    (
        "skill-type-unknown-and-missing",
        skill('type = "mcpStdio"\ncommand = "npx"\n') + '[experts."a".skills."t"]\ncommand = "x"\n',
        [
            P + "type: unknown skill type `mcpStdio` (expected `mcpStdioSkill`, `mcpSseSkill`, "
            "`interactiveSkill`); did you mean `mcpStdioSkill`?",
            'perstack.toml: experts."a".skills."t".type: is required but missing (one of `mcpStdioSkill`, '
            "`mcpSseSkill`, `interactiveSkill`)",
        ],
    ),
    (
        "skill-name",
        skill(STDIO, name="bad name"),
        [
            'perstack.toml: experts."a".skills."bad name": `bad name` is not a valid skill name (letters, '
            "digits, `@`, `/`, `.`, `_`, `-`)"
        ],
    ),
    (
        "interactive-tools",
        skill('type = "interactiveSkill"\n')
        + '[experts."a".skills."s".tools."bad name"]\ninputJsonSchema = "{}"\n'
        + '[experts."a".skills."s".tools."broken"]\ninputJsonSchema = "{nope"\n'
        + '[experts."a".skills."s".tools."array"]\ninputJsonSchema = "[1]"\n',
        [
            P + 'tools."bad name": `bad name` is not a valid tool name (1-64 letters, digits, `_`, `-`)',
            P
            + 'tools."broken".inputJsonSchema: is not valid JSON: Expecting property name enclosed in double '
            "quotes (line 1, column 2)",
            P
            + 'tools."array".inputJsonSchema: must be a JSON object (a schema like {"type": "object", ...})',
        ],
    ),
    (
        "interactive-tool-name-mismatch",
        skill('type = "interactiveSkill"\n') + '[experts."a".skills."s".tools."askUser"]\nname = "ask"\n'
        'inputJsonSchema = "{}"\n',
        [P + 'tools."askUser".name: `ask` does not match the table key `askUser`'],
    ),
    # --- [sandbox] ----------------------------------------------------------------------------------
    (
        "sandbox-settings",
        '[sandbox]\nmemory = "2x"\ncpus = 0\npids = 8\ntmpfsSize = "0"\nallowPrivate = ["db:5432", "db:0"]\n'
        'addHosts = ["db:notip"]\nbaseImage = "UPPER/Case"\n',
        [
            "perstack.toml: sandbox.baseImage: `UPPER/Case` is not a valid image reference "
            "([registry/]name[:tag][@digest], lower-case name)",
            "perstack.toml: sandbox.memory: `2x` is not a size (a number with an optional b, k, m or g suffix, "
            "like 512m)",
            "perstack.toml: sandbox.cpus: must be greater than 0",
            "perstack.toml: sandbox.pids: must be at least 16",
            "perstack.toml: sandbox.tmpfsSize: `0` is too small (the minimum is 1 byte)",
            "perstack.toml: sandbox.allowPrivate[1]: `db:0`: port must be a number from 1 to 65535",
            "perstack.toml: sandbox.addHosts[0]: `db:notip`: `notip` is not an IP address",
        ],
    ),
    # --- syntax -----------------------------------------------------------------------------------
    (
        "toml-syntax-error-line",
        'model = "x"\n[experts."a"\ninstruction = "x"\n',
        ["perstack.toml:2:13: invalid TOML: Expected ']' at the end of a table declaration"],
    ),
    (
        "toml-duplicate-key-line",
        'model = "x"\nmodel = "y"\n',
        ["perstack.toml:2:12: invalid TOML: Cannot overwrite a value"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_bad_input_message(text: str, expected: list[str]) -> None:
    assert errors_of(text).splitlines() == expected


def test_every_issue_is_one_line_and_collected_together() -> None:
    text = (
        'temperature = 1\nmaxSteps = -1\n[experts."a"]\ninstruction = "x"\ntags = ["A"]\n'
        '[experts."a".skills."s"]\ntype = "mcpSseSkill"\nendpoint = "https://10.1.2.3/\\nx"\n'
    )
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "perstack.toml")
    issues = info.value.issues
    assert [i.path for i in issues] == ["maxSteps", 'experts."a".skills."s".endpoint', 'experts."a".tags[0]']
    assert all(i.severity == "error" for i in issues)
    assert all("\n" not in str(i) for i in issues)


def test_header_values_are_never_echoed() -> None:
    text = '[provider]\nproviderName = "anthropic"\nsetting = { headers = { "X-K" = "sk-secret\\n" } }\n'
    assert "sk-secret" not in errors_of(text)


# --- warnings: loaded, reported, removed -------------------------------------------------------------


def warnings_of(text: str) -> list[str]:
    _config, warnings = parse_config_text(text, "perstack.toml")
    assert all(w.severity == "warning" for w in warnings)
    return [str(w) for w in warnings]


def test_temperature_is_a_warning_and_dropped() -> None:
    assert warnings_of('temperature = 0.3\nmodel = "m"\n') == [
        "perstack.toml: temperature: ignored: Perstack removed `temperature` (perstack#240)"
    ]


def test_network_tables_are_warnings() -> None:
    text = '[network]\nallowedDomains = ["a.com"]\n[experts."a"]\ninstruction = "x"\nnetwork = { allowedDomains = [] }\n'
    assert warnings_of(text) == [
        "perstack.toml: network: ignored: Perstack removed the top-level `network` table (perstack#139); put "
        "`allowedDomains` on the skills that need the network",
        'perstack.toml: experts."a".network: ignored: Perstack removed the Expert-level `network` table '
        "(perstack#139); put `allowedDomains` on the Expert's skills",
    ]


def test_top_level_key_under_a_table_header_is_a_warning() -> None:
    text = '[provider]\nproviderName = "anthropic"\n\nenvPath = [".env"]\n'
    config, _ = parse_config_text(text, "perstack.toml")
    assert config.env_path is None
    assert warnings_of(text) == [
        "perstack.toml: provider.envPath: ignored: `envPath` belongs at the top level, but TOML puts keys written "
        "after a [table] header into that table; move it above the first header (Perstack ignores it here too)"
    ]


def test_unknown_local_delegate_is_a_warning_registry_keys_are_not() -> None:
    text = (
        '[experts."a"]\ninstruction = "x"\ndelegates = ["b", "nope", "@org/x", "reg@1.0.0", "reg@latest", "bb"]\n'
        '[experts."b"]\ninstruction = "x"\n'
    )
    assert warnings_of(text) == [
        'perstack.toml: experts."a".delegates[1]: unknown local delegate `nope`: no such Expert in this file '
        "(Perstack would look it up in the registry)",
        'perstack.toml: experts."a".delegates[5]: unknown local delegate `bb`: no such Expert in this file '
        "(Perstack would look it up in the registry); did you mean `b`?",
    ]


def test_provider_native_tools_are_accepted_with_a_warning_that_they_are_unused() -> None:
    text = (
        '[experts."a"]\ninstruction = "x"\nproviderTools = ["webSearch"]\n'
        'providerSkills = [{ type = "builtin", skillId = "pdf" }]\n'
        '[experts."a".providerToolOptions.webSearch]\nmaxUses = 3\n'
        '[experts."b"]\ninstruction = "x"\nproviderTools = []\n'
    )
    config, _ = parse_config_text(text, "perstack.toml")
    assert config.experts["a"].provider_tools == ("webSearch",)
    unused = (
        "accepted but not used: provider-native tools and skills are not passed to the provider by this "
        "version of sandbox; the Expert runs without them"
    )
    assert warnings_of(text) == [
        f'perstack.toml: experts."a".{key}: {unused}'
        for key in ("providerTools", "providerSkills", "providerToolOptions")
    ]


def test_delegate_cycles_load_fast() -> None:
    n = 300
    text = "".join(
        f'[experts."e{i}"]\ninstruction = "x"\ndelegates = ["e{(i + 1) % n}", "e{i}"]\n' for i in range(n)
    )
    started = time.perf_counter()
    config, warnings = parse_config_text(text, "perstack.toml")
    assert time.perf_counter() - started < 5
    assert warnings == ()
    assert config.experts["e299"].delegates == ("e0", "e299")


# --- values come out normalised ----------------------------------------------------------------------


def test_domains_and_endpoints_are_normalised() -> None:
    text = skill(f'{STDIO}allowedDomains = ["API.Example.COM.", "*.GitHub.com"]\n') + (
        '[experts."a".skills."sse"]\ntype = "mcpSseSkill"\nendpoint = "https://MCP.Example.com.:8443/sse?x=1"\n'
        'allowedDomains = ["Cdn.Example.com"]\n'
        '[experts."a".providerToolOptions.webSearch]\nallowedDomains = ["Docs.Example.com."]\n'
    )
    config, _ = parse_config_text(text, "perstack.toml")
    skills = config.experts["a"].skills
    assert skills is not None
    stdio, sse = skills["s"], skills["sse"]
    assert isinstance(stdio, McpStdioSkill)
    assert isinstance(sse, McpSseSkill)
    assert stdio.allowed_domains == ("api.example.com", "*.github.com")
    assert sse.endpoint == "https://mcp.example.com:8443/sse?x=1"
    assert sse.allowed_domains == ("cdn.example.com",)
    assert config.experts["a"].provider_tool_options == {
        "webSearch": {"allowedDomains": ("docs.example.com",)}
    }


def test_sandbox_values_are_normalised() -> None:
    text = '[sandbox]\nmemory = "2G"\ntmpfsSize = "512M"\nallowPrivate = ["DB:5432", "Gw.Corp:80"]\n'
    text += 'addHosts = ["Db:10.0.0.2", "v6:FD00:0::2"]\n'
    config, _ = parse_config_text(text, "perstack.toml")
    assert config.sandbox is not None
    assert config.sandbox.memory == "2g"
    assert config.sandbox.tmpfs_size == "512m"
    assert config.sandbox.allow_private == ("db:5432", "gw.corp:80")
    assert config.sandbox.add_hosts == ("db:10.0.0.2", "v6:fd00::2")


def test_args_are_not_validated_as_packages_and_ollama_may_use_http() -> None:
    text = skill('type = "mcpStdioSkill"\ncommand = "node"\nargs = ["../server.js", "--flag=$(x)"]\n')
    text = '[provider]\nproviderName = "ollama"\nsetting = { baseUrl = "http://localhost:11434" }\n' + text
    config, warnings = parse_config_text(text, "perstack.toml")
    assert warnings == ()
    assert config.provider is not None
    assert config.provider.setting == {"baseUrl": "http://localhost:11434"}


# --- path rendering ----------------------------------------------------------------------------------


def test_python_attribute_names_map_back_to_toml_keys() -> None:
    data = {
        "experts": {
            "a": {
                "instruction": "x",
                "skills": {
                    "s": {
                        "type": "mcpStdioSkill",
                        "command": "npx",
                        "package_name": "x",
                        "allowed_domains": ["1.2.3.4"],
                    }
                },
            }
        }
    }
    with pytest.raises(ValidationError) as info:
        PerstackConfig.model_validate(data)
    assert info.value.errors()[0]["loc"][-2] == "allowed_domains"  # what pydantic reports
    assert [str(i) for i in validation_issues(info.value, "f.toml")] == [
        'f.toml: experts."a".skills."s".allowedDomains[0]: `1.2.3.4` is an IP address, not a host name'
    ]


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (
            ("experts", "a", "skills", "web", "mcpStdioSkill", "allowedDomains", 1),
            'experts."a".skills."web".allowedDomains[1]',
        ),
        (
            ("experts", "@org/x", "skills", "@perstack/base", "interactiveSkill", "tools", "t", "name"),
            'experts."@org/x".skills."@perstack/base".tools."t".name',
        ),
        (("experts", 'we"ird\n', "[key]"), 'experts."we\\"ird\\n"'),
        (("reasoningBudget", "literal['none','low']"), "reasoningBudget"),
        (("provider", "setting", "headers", "X-A"), 'provider.setting.headers."X-A"'),
        (("sandbox", "add_hosts", 0), "sandbox.addHosts[0]"),
    ],
)
def test_render_path(loc: tuple[str | int, ...], path: str) -> None:
    assert render_path(loc) == path


def test_render_path_can_keep_names_as_written() -> None:
    assert render_path(("sandbox", "add_hosts"), map_aliases=False) == "sandbox.add_hosts"
