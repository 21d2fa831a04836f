"""Renderers: SandboxPlan -> Dockerfile, compose.yaml, squid.conf and the rest of the build context."""

from ._context import (
    EGRESS_NETWORK,
    EXPERT_CONFIG_PATH,
    PROXY_CONFIG_DIR,
    PROXY_PORT,
    ProxyRuntime,
    RenderedContext,
    RunSite,
    proxy_policy,
    render_context,
)
from ._filters import dockerfile_json, image_ref, sh, yaml_str
from ._wheel import runtime_wheel

__all__ = [
    "EGRESS_NETWORK",
    "EXPERT_CONFIG_PATH",
    "PROXY_CONFIG_DIR",
    "PROXY_PORT",
    "ProxyRuntime",
    "RenderedContext",
    "RunSite",
    "dockerfile_json",
    "image_ref",
    "proxy_policy",
    "render_context",
    "runtime_wheel",
    "sh",
    "yaml_str",
]
