"""The sandbox plan: what one Expert (and every local delegate it can reach) may do inside the sandbox.

The plan is the contract between "what an Expert may do" and "how Docker enforces it": `sandbox plan --json`
prints it for review, the renderers consume only it, and `sandbox audit` checks a running sandbox against
it. It is pure data: computing it touches neither Docker nor the network.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EnvPlan", "Limits", "NetworkPlan", "PackagePlan", "SandboxPlan", "SkillPlan"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class PackagePlan(_Frozen):
    """Skill packages installed into the image at build time, as install specs (`name@1.0`, `name==1.0`)."""

    npm: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()


class EnvPlan(_Frozen):
    """Names of the environment variables passed into the sandbox. Values are never part of the plan."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    missing: tuple[str, ...] = Field(default=(), description="required names with no value on this host")

    def values(self, env: Mapping[str, str]) -> dict[str, str]:
        """The values of exactly these variables from `env`; every missing required one in one `UserError`.

        The one missing-env check of a run: the required names already hold the provider's (its spec) and
        every skill's `requiredEnv` (`compute_plan`), so the native runtime on the host and the docker
        executor refuse alike, with one message, before anything starts.
        """
        from sandbox._errors import UserError

        missing = [name for name in self.required if not env.get(name)]
        if missing:
            raise UserError(
                "missing required environment variables: "
                + ", ".join(missing)
                + " (set them in the environment or an env file, e.g. .env)"
            )
        return {name: env[name] for name in (*self.required, *self.optional) if env.get(name)}


class Limits(_Frozen):
    memory: str = "2g"
    cpus: float = 2.0
    pids: int = 512
    tmpfs_size: str = Field(default="512m", alias="tmpfsSize")
    # What the Expert may write to the host's disk through the workspace: per file (RLIMIT_FSIZE, kernel)
    # and in total (the host stops the run); see sandbox/docker/_quota.py.
    workspace_quota: str = Field(default="10g", alias="workspaceQuota")

    @property
    def workspace_quota_bytes(self) -> int:
        from sandbox.config import size_bytes

        return size_bytes(self.workspace_quota)


class NetworkPlan(_Frozen):
    """Egress: the proxy allowlist plus explicit opt-ins, all off unless named."""

    allowed_domains: tuple[str, ...] = Field(default=(), alias="allowedDomains")
    allow_private: tuple[str, ...] = Field(default=(), alias="allowPrivate")
    add_hosts: tuple[str, ...] = Field(default=(), alias="addHosts")


class SkillPlan(_Frozen):
    """One skill of one Expert, as the sandbox sees it."""

    expert: str
    name: str
    type: str
    command: str | None = None
    package: str | None = None
    ecosystem: str | None = None
    builtin: bool = False
    endpoint: str | None = None
    domains: tuple[str, ...] = ()


class SandboxPlan(_Frozen):
    expert: str
    experts: tuple[str, ...]
    registry_delegates: tuple[str, ...] = Field(default=(), alias="registryDelegates")
    unknown_delegates: tuple[str, ...] = Field(default=(), alias="unknownDelegates")
    runtime: str = "perstack"
    provider: str
    model: str
    runtimes: tuple[str, ...]
    packages: PackagePlan
    skills: tuple[SkillPlan, ...] = ()
    allowed_domains: tuple[str, ...] = Field(alias="allowedDomains")
    domain_sources: dict[str, tuple[str, ...]] = Field(default_factory=dict, alias="domainSources")
    env: EnvPlan
    base_image: str = Field(alias="baseImage")
    node_image: str = Field(alias="nodeImage")
    ca_cert: str | None = Field(default=None, alias="caCert")
    limits: Limits = Limits()
    network: NetworkPlan = NetworkPlan()
    warnings: tuple[str, ...] = ()
