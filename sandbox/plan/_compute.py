"""Config + Expert key + options -> SandboxPlan. Pure: no Docker, no network, no filesystem.

Unlike the reference implementation, which scans only the coordinator, the walk covers the coordinator
and every local delegate it can reach (transitively, with a visited set, so delegate cycles terminate),
because a delegate runs inside the same sandbox and needs its runtimes, packages, domains and variables.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sandbox._errors import PlanError
from sandbox.config import (
    DEFAULT_MODEL,
    Expert,
    InteractiveSkill,
    McpSseSkill,
    McpStdioSkill,
    PackageSpec,
    PerstackConfig,
    is_registry_key,
    normalize_domain,
    package_spec,
    parse_add_host,
    parse_host_port,
    provider_spec,
    validate_cpus,
    validate_size,
)
from sandbox.settings import resolve_provider

from ._model import EnvPlan, Limits, NetworkPlan, PackagePlan, SandboxPlan, SkillPlan

__all__ = [
    "BUILTIN_BASE_SKILL",
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_NODE_IMAGE",
    "PlanInputs",
    "compute_plan",
    "to_proxy_domains",
]

BUILTIN_BASE_SKILL = "@perstack/base"
# What online users get by default: official images from Docker Hub. Offline machines point the
# `baseImage`/`nodeImage` settings (or --base-image/--node-image) at locally built images instead.
DEFAULT_BASE_IMAGE = "debian:bookworm-slim"
DEFAULT_NODE_IMAGE = "node:22-bookworm-slim"

_NODE_COMMANDS = frozenset({"npx", "node", "npm"})
_PYTHON_COMMANDS = frozenset({"uvx", "uv", "python", "python3", "pip"})


@dataclass(frozen=True)
class PlanInputs:
    """What the plan depends on besides the config: CLI overrides and the private env map (names only)."""

    expert_key: str
    runtime: str = "perstack"
    provider: str | None = None
    model: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    extra_env: tuple[str, ...] = ()
    base_image: str | None = None
    node_image: str | None = None
    ca_cert: str | None = None
    memory: str | None = None
    cpus: float | None = None
    pids: int | None = None
    tmpfs_size: str | None = None
    workspace_quota: str | None = None
    allow_private: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()


def _quota(text: str | None) -> str | None:
    """`--workspace-quota`, checked like the file's `workspaceQuota` (a size of at least 1m)."""
    if text is None:
        return None
    try:
        return validate_size(text, minimum=1 << 20, minimum_text="1m")
    except ValueError as exc:
        raise PlanError(f"--workspace-quota: {exc}") from None


def _cpus(value: float | None) -> float | None:
    """`--cpus`, checked like the file's `cpus` (`validate_cpus`)."""
    if value is None:
        return None
    try:
        return validate_cpus(value)
    except ValueError as exc:
        raise PlanError(f"--cpus: {exc}") from None


def _walk(config: PerstackConfig, root: str) -> tuple[list[str], list[str], list[str]]:
    """Coordinator first, then local delegates breadth-first.

    Returns (local Experts, registry-shaped delegates not defined locally, bare names defined nowhere).
    """
    if root not in config.experts:
        known = ", ".join(sorted(config.experts)) or "none"
        raise PlanError(f"unknown Expert {root!r} (defined: {known})")
    order: list[str] = []
    registry: list[str] = []
    unknown: list[str] = []
    seen = {root}
    queue = deque([root])
    while queue:
        key = queue.popleft()
        order.append(key)
        for delegate in config.experts[key].delegates:
            if delegate in seen:
                continue
            seen.add(delegate)
            if delegate in config.experts:
                queue.append(delegate)
            elif is_registry_key(delegate):
                registry.append(delegate)
            else:
                unknown.append(delegate)
    return order, registry, unknown


def _skills(expert: Expert) -> Mapping[str, McpStdioSkill | McpSseSkill | InteractiveSkill] | None:
    return expert.skills


def install_spec(spec: PackageSpec) -> str:
    """The string the image's package manager installs: `name@1.2.3` (npm) or `name==1.2.3` (PyPI)."""
    if spec.version is None:
        return spec.name
    return f"{spec.name}@{spec.version}" if spec.ecosystem == "npm" else f"{spec.name}=={spec.version}"


def to_proxy_domains(domains: Iterable[str]) -> tuple[str, ...]:
    """Normalised domains -> Squid dstdomain form, deduplicated, covered subdomains dropped, sorted.

    `*.example.com` becomes `.example.com` (apex and every subdomain). An exact host or a narrower
    wildcard under a listed wildcard is dropped: Squid refuses overlapping entries in one list.
    """
    forms: set[str] = set()
    for d in domains:
        forms.add("." + d[2:] if d.startswith("*.") else d)
    wild = {f for f in forms if f.startswith(".")}

    def covered(entry: str) -> bool:
        bare = entry.lstrip(".")
        labels = bare.split(".")
        # Any strictly-higher wildcard, or the same-apex wildcard for an exact host.
        for i in range(len(labels)):
            parent = "." + ".".join(labels[i:])
            if parent == entry:
                continue
            if parent in wild and (i > 0 or not entry.startswith(".")):
                return True
        return False

    return tuple(sorted((f for f in forms if not covered(f)), key=lambda s: (s.lstrip("."), s)))


def compute_plan(config: PerstackConfig, inputs: PlanInputs) -> SandboxPlan:
    """Compute the plan for `inputs.expert_key`. Raises PlanError for an unknown Expert or bad option."""
    experts, registry, unknown = _walk(config, inputs.expert_key)
    warnings: list[str] = []
    sources: dict[str, list[str]] = {}
    required: list[str] = []
    optional: list[str] = []
    npm: set[str] = set()
    pypi: set[str] = set()
    runtimes = {"python"}  # the sandbox's own runtime is Python, in every image
    skills: list[SkillPlan] = []

    def add_domain(domain: str, source: str) -> None:
        sources.setdefault(domain, [])
        if source not in sources[domain]:
            sources[domain].append(source)

    for key in experts:
        expert = config.experts[key]
        declared = _skills(expert)
        if declared is None:
            skills.append(SkillPlan(expert=key, name=BUILTIN_BASE_SKILL, type="mcpStdioSkill", builtin=True))
            continue
        for name, skill in declared.items():
            where = f'experts."{key}".skills."{name}"'
            if isinstance(skill, McpStdioSkill):
                for env_name in skill.required_env:
                    if env_name not in required:
                        required.append(env_name)
                for d in skill.allowed_domains:
                    add_domain(d, where)
                if name == BUILTIN_BASE_SKILL:
                    skills.append(
                        SkillPlan(
                            expert=key,
                            name=name,
                            type=skill.type,
                            builtin=True,
                            domains=skill.allowed_domains,
                        )
                    )
                    continue
                try:
                    spec = package_spec(skill)
                except ValueError as exc:
                    raise PlanError(f"{where}: {exc}") from None
                if skill.command in _NODE_COMMANDS:
                    runtimes.add("node")
                elif skill.command not in _PYTHON_COMMANDS:
                    warnings.append(
                        f"{where}: command {skill.command!r} is not npx/uvx/node/python; "
                        "it must already exist in the base image"
                    )
                if spec is None:
                    if skill.command in {"npx", "uvx"}:
                        warnings.append(f"{where}: no package found in args; nothing installed for it")
                else:
                    (npm if spec.ecosystem == "npm" else pypi).add(install_spec(spec))
                    if spec.version is None:
                        warnings.append(
                            f"{where}: package {spec.name!r} is not pinned; the version resolved at build "
                            "is recorded in the image"
                        )
                skills.append(
                    SkillPlan(
                        expert=key,
                        name=name,
                        type=skill.type,
                        command=skill.command,
                        package=install_spec(spec) if spec else None,
                        ecosystem=spec.ecosystem if spec else None,
                        domains=skill.allowed_domains,
                    )
                )
            elif isinstance(skill, McpSseSkill):
                host = urlsplit(skill.endpoint).hostname or ""
                add_domain(normalize_domain(host), f"{where}.endpoint")
                for d in skill.allowed_domains:
                    add_domain(d, where)
                skills.append(
                    SkillPlan(
                        expert=key,
                        name=name,
                        type=skill.type,
                        endpoint=skill.endpoint,
                        domains=skill.allowed_domains,
                    )
                )
            else:
                skills.append(SkillPlan(expert=key, name=name, type=skill.type))

    # Provider: CLI beats the file; the file beats the default. The same rule the runtime applies.
    provider_name, setting = resolve_provider(inputs.provider, config)
    try:
        spec_p = provider_spec(provider_name)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    try:
        provider_hosts = spec_p.hosts(setting, inputs.env)
    except ValueError as exc:
        raise PlanError(f"provider {provider_name}: {exc}") from None
    for host in provider_hosts:
        try:
            add_domain(normalize_domain(host), f"provider {provider_name}")
        except ValueError:
            warnings.append(
                f"provider {provider_name}: host {host!r} is an address, not a name; "
                "reach it with --add-host NAME:IP and --allow-private NAME:PORT"
            )
    for env_name in spec_p.required_env:
        if env_name not in required:
            required.append(env_name)
    for env_name in spec_p.optional_env:
        if env_name not in required and env_name not in optional:
            optional.append(env_name)
    if unknown:
        warnings.append(
            "unknown local delegates (not in perstack.toml, not registry keys); `run` refuses this Expert: "
            + ", ".join(unknown)
        )
    if registry:
        warnings.append(
            "registry delegates were not fetched (offline, or the registry refused them) and will not run: "
            + ", ".join(registry)
        )
    for env_name in inputs.extra_env:
        if env_name not in required:
            required.append(env_name)
        if env_name in optional:
            optional.remove(env_name)

    settings = config.sandbox
    try:
        allow_private = tuple(
            f"[{h}]:{p}" if ":" in h else f"{h}:{p}"
            for h, p in (
                parse_host_port(v)
                for v in (*(settings.allow_private if settings else ()), *inputs.allow_private)
            )
        )
        add_hosts = tuple(
            f"{n}:{ip}"
            for n, ip in (
                parse_add_host(v) for v in (*(settings.add_hosts if settings else ()), *inputs.add_hosts)
            )
        )
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    for entry in allow_private:
        warnings.append(f"private destination opened by name: {entry}")

    allowed = to_proxy_domains(sources)
    missing = [n for n in required if not inputs.env.get(n)]
    missing += [n for n in spec_p.missing_env(setting, inputs.env) if n not in missing]
    for n in missing:
        if n not in required:
            required.append(n)
            if n in optional:
                optional.remove(n)
    model = inputs.model or config.model or DEFAULT_MODEL
    defaults = Limits()
    limits = Limits(
        memory=inputs.memory or (settings.memory if settings and settings.memory else defaults.memory),
        cpus=_cpus(inputs.cpus) or (settings.cpus if settings and settings.cpus else defaults.cpus),
        pids=inputs.pids or (settings.pids if settings and settings.pids else defaults.pids),
        tmpfs_size=inputs.tmpfs_size
        or (settings.tmpfs_size if settings and settings.tmpfs_size else defaults.tmpfs_size),
        workspace_quota=_quota(inputs.workspace_quota)
        or (settings.workspace_quota if settings and settings.workspace_quota else defaults.workspace_quota),
    )
    return SandboxPlan(
        expert=inputs.expert_key,
        experts=tuple(experts),
        registry_delegates=tuple(registry),
        unknown_delegates=tuple(unknown),
        runtime=inputs.runtime,
        provider=provider_name,
        model=model,
        runtimes=tuple(sorted(runtimes)),
        packages=PackagePlan(npm=tuple(sorted(npm)), pypi=tuple(sorted(pypi))),
        skills=tuple(skills),
        allowed_domains=allowed,
        domain_sources={d: tuple(s) for d, s in sorted(sources.items())},
        env=EnvPlan(required=tuple(required), optional=tuple(optional), missing=tuple(missing)),
        base_image=inputs.base_image
        or (settings.base_image if settings and settings.base_image else DEFAULT_BASE_IMAGE),
        node_image=inputs.node_image
        or (settings.node_image if settings and settings.node_image else DEFAULT_NODE_IMAGE),
        ca_cert=inputs.ca_cert or (settings.ca_cert if settings else None),
        limits=limits,
        network=NetworkPlan(allowed_domains=allowed, allow_private=allow_private, add_hosts=add_hosts),
        warnings=tuple(warnings),
    )
