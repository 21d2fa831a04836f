"""Sandbox plans: what an Expert graph may do, computed from config and options (see `_compute`)."""

from ._compute import (
    BUILTIN_BASE_SKILL,
    DEFAULT_BASE_IMAGE,
    DEFAULT_NODE_IMAGE,
    PlanInputs,
    compute_plan,
    to_proxy_domains,
)
from ._model import EnvPlan, Limits, NetworkPlan, PackagePlan, SandboxPlan, SkillPlan
from ._runtime_default import default_runtime, reaches_registry_expert

__all__ = [
    "BUILTIN_BASE_SKILL",
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_NODE_IMAGE",
    "EnvPlan",
    "Limits",
    "NetworkPlan",
    "PackagePlan",
    "PlanInputs",
    "SandboxPlan",
    "SkillPlan",
    "compute_plan",
    "default_runtime",
    "reaches_registry_expert",
    "to_proxy_domains",
]
