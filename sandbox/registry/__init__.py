"""Registry Experts (`@scope/name`, `name@1.2.3`, `name@tag`), fetched on the host before the plan.

Why on the host and before planning (the reference resolves them inside the sandbox, at run time): a
registry Expert's skills then get installed into the image at build time like a local Expert's, the plan
shows what it may do before anything runs, and the sandbox never needs the registry on its allowlist.
A registry Expert is someone else's code, so its definition is validated exactly like perstack.toml
(plus the registry's own rules: skills are `npx`/`uvx` packages), and it cannot ask for egress through
`allowedDomains` (the registry does not carry them): what it adds to the allowlist is only the hosts of its
SSE skill endpoints, which `sandbox plan` shows before anything runs.

`SANDBOX_NO_REGISTRY=1` keeps every command offline: registry delegates are then reported unresolved.
"""

from ._client import DEFAULT_API_BASE_URL, RegistryError, fetch_expert
from ._resolve import MAX_REGISTRY_EXPERTS, Resolution, resolve_registry_experts

__all__ = [
    "DEFAULT_API_BASE_URL",
    "MAX_REGISTRY_EXPERTS",
    "RegistryError",
    "Resolution",
    "fetch_expert",
    "resolve_registry_experts",
]
