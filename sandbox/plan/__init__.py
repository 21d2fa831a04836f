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
    "to_proxy_domains",
]
