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
from ._squid import PRIVATE_DESTINATIONS, ProxyPolicy, render_squid
from ._wheel import installation_fingerprint, runtime_wheel

__all__ = [
    "EGRESS_NETWORK",
    "EXPERT_CONFIG_PATH",
    "PRIVATE_DESTINATIONS",
    "PROXY_CONFIG_DIR",
    "PROXY_PORT",
    "ProxyPolicy",
    "ProxyRuntime",
    "RenderedContext",
    "RunSite",
    "dockerfile_json",
    "image_ref",
    "installation_fingerprint",
    "proxy_policy",
    "render_context",
    "render_squid",
    "runtime_wheel",
    "sh",
    "yaml_str",
]
