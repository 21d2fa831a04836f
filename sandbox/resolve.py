"""One sandbox, resolved once: config + options -> plan, CA bundle, image tags, reachable destinations.

Why this module exists: `sandbox plan` is the contract a user reviews before a run, so it must show what
`render`, `build`, `run` and `audit` then use. When each command turned the plan into a sandbox on its own,
they drifted: `plan` rendered without the `--ca-cert` bundle (whose bytes are part of the Expert image's
content hash), so it printed another image tag than the one built and run; and its "may reach" line
listed only the allowlist on 443, leaving out the private opt-ins (`--allow-private HOST:PORT`, HTTPS and
plain HTTP to exactly that name and port) and the proxy's static names (`--add-host`). Every command now
goes through `resolve_sandbox`, and `ResolvedSandbox` answers each question in one place:

* `plan`: the pure `SandboxPlan` (`sandbox.plan.compute_plan`);
* `ca_bundle`: the bytes of the CA bundle the plan names, checked to be PEM (the one reader);
* `expert_image` / `proxy_image`: the content-addressed tags, rendered with those bytes; they depend on
  nothing run-specific (`RunSite`), so the tags `plan` prints are the ones a run builds and starts;
* `destinations`: what the Expert may reach, derived from the very `ProxyPolicy` the proxy's configuration
  is rendered from, not re-derived from the plan's lists;
* `render(site)`: the build context for one run, with those bytes.

What is costly is computed on first use and then kept (reading the bundle, rendering for the tags builds the
runtime wheel), so a command pays only for what it asks and never twice.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox._errors import UserError
from sandbox.plan import PlanInputs, SandboxPlan, compute_plan

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig
    from sandbox.render import ProxyPolicy, ProxyRuntime, RenderedContext, RunSite

__all__ = ["Destination", "ResolvedSandbox", "read_ca_bundle", "resolve_sandbox"]

PRIVATE_OPT_IN = "private opt-in (--allow-private / [sandbox].allowPrivate)"
"""The source named for a destination the user opened explicitly, in plan's output."""


def read_ca_bundle(plan: SandboxPlan) -> bytes | None:
    """The CA bundle the plan names (`--ca-cert` / `[sandbox].caCert`), checked to be PEM.

    A relative `--ca-cert` is relative to the working directory; the file's `caCert` was made absolute
    against the config's directory when it was loaded. One reader for every command, so a bundle that
    `run` refuses is refused by `plan` and `render` with the same message.
    """
    if plan.ca_cert is None:
        return None
    path = Path(plan.ca_cert).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"--ca-cert {plan.ca_cert}: cannot read ({exc.strerror})") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise UserError(f"--ca-cert {plan.ca_cert}: not a PEM certificate bundle")
    return data


@dataclass(frozen=True)
class Destination:
    """One place the Expert may reach through the proxy.

    `host` is an exact name or, with a leading dot, a name and every subdomain (Squid's form). `schemes`
    is `("https",)` for the allowlist (CONNECT only) and `("https", "http")` for a private opt-in, the one
    deliberate plain-HTTP exception (docs/security.md section 2.1). `address`: the IP the proxy resolves
    `host` to (`--add-host`) instead of asking DNS. `sources`: why it is open.
    """

    host: str
    port: int
    schemes: tuple[str, ...]
    sources: tuple[str, ...] = ()
    address: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "schemes": list(self.schemes),
            "sources": list(self.sources),
            "address": self.address,
        }

    def describe(self) -> str:
        """One line for a table: `gw.corp:8443 (https, http) -> 10.1.2.3  <- private opt-in ...`."""
        text = f"{self.host}:{self.port} ({', '.join(self.schemes)})"
        if self.address:
            text += f" -> {self.address}"
        return text + (f"  <- {', '.join(self.sources)}" if self.sources else "")


def _is_private(ip: str) -> bool:
    """Whether the proxy refuses `ip` as a resolved address unless the name is opted in (`_squid`)."""
    from sandbox.render import PRIVATE_DESTINATIONS

    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(cidr) for cidr, _ in PRIVATE_DESTINATIONS)


def destinations(plan: SandboxPlan, policy: ProxyPolicy) -> tuple[Destination, ...]:
    """What `policy` lets the Expert reach, with the plan's reasons; sorted by host, then port.

    An allowlisted name that `--add-host` points at a private address is left out unless it is opted in:
    the proxy refuses it (`deny allowlisted resolves_private`), so showing it would promise too much.
    """
    static = dict(policy.add_hosts)
    found: dict[tuple[str, int], Destination] = {}
    opted = set(policy.allow_private)
    for domain in policy.allowed_domains:
        bare = domain.lstrip(".")
        sources = plan.domain_sources.get(bare) or plan.domain_sources.get("*." + bare, ())
        for port in policy.allowed_ports:
            address = None if domain.startswith(".") else static.get(domain)
            if address is not None and _is_private(address) and (domain, port) not in opted:
                continue
            found[(domain, port)] = Destination(domain, port, ("https",), tuple(sources), address)
    for host, port in sorted(opted):
        old = found.get((host, port))
        sources = (*(old.sources if old else ()), PRIVATE_OPT_IN)
        found[(host, port)] = Destination(host, port, ("https", "http"), sources, static.get(host))
    return tuple(found[k] for k in sorted(found, key=lambda hp: (hp[0].lstrip("."), hp[0], hp[1])))


@dataclass(frozen=True)
class ResolvedSandbox:
    """What one Expert's sandbox is, for every command: see the module docstring.

    Built by `resolve_sandbox`; the attributes other than `config` and `plan` are computed on first use.
    """

    config: PerstackConfig
    plan: SandboxPlan

    @functools.cached_property
    def ca_bundle(self) -> bytes | None:
        """The CA bundle's bytes (None without one); a `UserError` when it cannot be read or is not PEM."""
        return read_ca_bundle(self.plan)

    @functools.cached_property
    def _images(self) -> tuple[str, str]:
        from sandbox.render import RunSite

        # The tags hash the Dockerfile, the runtime wheel, the CA bundle and the proxy's sources: nothing
        # of the site. Any site gives them; a fixed one keeps this independent of the caller.
        ctx = self.render(RunSite(project="sandbox-resolve", workspace=Path("/")))
        return ctx.expert_image, ctx.proxy_image

    @property
    def expert_image(self) -> str:
        """The Expert image's tag: what `build` builds and `run` creates the container from."""
        return self._images[0]

    @property
    def proxy_image(self) -> str:
        """The proxy image's tag."""
        return self._images[1]

    @functools.cached_property
    def policy(self) -> ProxyPolicy:
        """The proxy's part of the plan, as its configuration is rendered (`sandbox.render.proxy_policy`)."""
        from sandbox.render import proxy_policy

        return proxy_policy(self.plan)

    @functools.cached_property
    def destinations(self) -> tuple[Destination, ...]:
        """Where the Expert may go through the proxy (`destinations`)."""
        return destinations(self.plan, self.policy)

    def render(
        self,
        site: RunSite,
        *,
        plan: SandboxPlan | None = None,
        proxy_runtime: ProxyRuntime | None = None,
    ) -> RenderedContext:
        """The build context at `site`, with the CA bundle. `plan`: render another plan of the same
        sandbox with the same bundle (the audit's, which only adds its own destinations)."""
        from sandbox.render import render_context

        return render_context(
            plan or self.plan, self.config, site, ca_cert=self.ca_bundle, proxy_runtime=proxy_runtime
        )

    def to_json(self) -> dict[str, Any]:
        """The plan as `sandbox plan --json` prints it: the plan, plus the image tags and destinations."""
        data = self.plan.model_dump(mode="json", by_alias=True)
        data["image"] = self.expert_image
        data["proxyImage"] = self.proxy_image
        data["reach"] = [d.to_json() for d in self.destinations]
        return data


def resolve_sandbox(config: PerstackConfig, inputs: PlanInputs | SandboxPlan) -> ResolvedSandbox:
    """Resolve the sandbox of `inputs` (options to plan with, or a plan computed from `config` already).

    The executor and the audit receive a plan the CLI computed with every sandbox flag; they resolve that
    plan, so nothing is planned twice. Raises `PlanError` for options that cannot be planned.
    """
    plan = inputs if isinstance(inputs, SandboxPlan) else compute_plan(config, inputs)
    return ResolvedSandbox(config=config, plan=plan)
