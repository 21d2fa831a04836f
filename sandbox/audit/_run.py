"""`run_audit`: build an Expert's real sandbox, run the probes inside and the controls outside, judge.

The topology is the one `sandbox run` creates, from the same rendered compose.yaml (translated by the
executor's `load_compose`), the same images and the same user, with these additions, all labelled like a
run's objects (so `sandbox clean` removes them after a `kill -9`) and all removed at the end::

    internal (internal: true)          egress (from compose)      audit-public (TEST-NET, internal)
      expert (probe program) ──┐          ┌─────────────────────── upstream (helper image)
                               ├─ proxy ──┤                      ├─ control runner (helper image)
                               └─ control proxy (looser policy) ─┤
                                                                 audit-lan (private subnet, internal)
                                                                   upstream's private address

* The Expert's container runs the probe program (`python -m sandbox.audit._probes`, this package's copy
  inside the image) instead of the runtime, as the same user with the same limits and environment; the
  probe list and throwaway canary "secrets" arrive on stdin exactly as a run's secrets do.
* The proxy runs the plan's policy plus the audit's test names (`_policy.check_additions` proves nothing
  else changed); the control proxy and the control runner exist only to show each refused path working
  when it is allowed. Helpers run the trusted helper image, never the Expert's.
* The host opens a throwaway listener (so "host services are unreachable" is tested against a service that
  exists) and watches its own responsiveness while the resource probes exhaust the limits.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import ipaddress
import json
import os
import random
import secrets
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from sandbox._errors import DockerError, RunError, UserError
from sandbox._wire import new_key
from sandbox.config import PerstackConfig
from sandbox.docker import (
    ROLE_LABEL,
    STDOUT,
    TOOL_LABEL,
    TOOL_NAME,
    AttachedStream,
    ComposeProject,
    ConsoleBuildReporter,
    ContainerBackend,
    ContainerSpec,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    NullReporter,
    ProxyAccess,
    SandboxSession,
    SkillsCache,
    SubnetTaken,
    UserChoice,
    can_mount,
    ensure_images,
    host_routes,
    is_proxy_ready_line,
    load_compose,
    make_run_dir,
    nosuid_workspace,
    parse_proxy_log_line,
    pick_subnet,
    resolve_user,
    run_labels,
    scan_workspace,
)
from sandbox.plan import SandboxPlan
from sandbox.render import PROXY_CONFIG_DIR, PROXY_PORT, RunSite, proxy_policy, render_squid
from sandbox.resolve import resolve_sandbox

from ._catalog import Evidence, Outcome, Site, build_catalog, evidence_to_json, judge_all, site_to_json
from ._host import (
    HostListener,
    ResponsivenessMonitor,
    file_id,
    host_ipv4,
    host_ipv6,
    secret_hashes,
    secret_values,
)
from ._images import HELPER_DIR, ensure_helper_image
from ._layout import UserLayout, build_replica, host_checks, settle_replica
from ._policy import audit_names, audit_plan, check_additions, control_policy
from ._upstream import PREFIX as UPSTREAM_PREFIX
from ._wire_check import judge_wire

__all__ = ["AuditReport", "AuditSettings", "run_audit"]

_PUBLIC_POOLS = ("198.51.100.0/24", "203.0.113.0/24")  # TEST-NET-2 and -3: public-looking, never routed
_SUBNET_ATTEMPTS = 6
_GC_GRACE_S = 600
EXPERT_PROBE_ENTRYPOINT = ("/opt/sandbox/venv/bin/python", "-m", "sandbox.audit._probes")


@dataclass(frozen=True)
class AuditSettings:
    """Knobs for embedders and tests; the CLI uses the defaults.

    * `uid`/`gid`: who the Expert runs as (default: the invoking user, or `SANDBOX_USER=uid:gid`).
    * `timeout_s`: how long the probes may take before the containers are killed.
    * `temp_root`: where the audit's private temp dir goes (default: the system temp dir).
    * `resources`: run the fork/memory/tmpfs bombs (the slowest part).
    * `stderr`: where progress lines go; `progress`: show build progress there.
    * `evidence_path`: also write the site and the raw evidence there as JSON (debugging, test fixtures).
    * `layout`: the user's real workspace layout, replicated for the steering probes (`_layout`); default:
      the working directory with nothing to protect but the job store.
    """

    uid: int | None = None
    gid: int | None = None
    timeout_s: float = 300.0
    temp_root: Path | None = None
    resources: bool = True
    stderr: IO[str] | None = None
    progress: bool = True
    evidence_path: Path | None = None
    layout: UserLayout | None = None


@dataclass
class AuditReport:
    """The audit's result: one `Outcome` per probe plus what was audited."""

    expert: str
    outcomes: list[Outcome]
    seconds: float
    sandbox: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.verdict == "pass" for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "unproven": 0}
        for o in self.outcomes:
            out[o.verdict] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "sandbox-audit/1",
            "expert": self.expert,
            "ok": self.ok,
            "summary": self.counts(),
            "seconds": round(self.seconds, 2),
            "sandbox": self.sandbox,
            "probes": [o.to_json() for o in self.outcomes],
        }


def _user(settings: AuditSettings, env: Mapping[str, str]) -> UserChoice:
    """As `sandbox run` in this directory would choose (`sandbox.docker._user`): never root by default."""
    return resolve_user(settings.uid, settings.gid, env, Path.cwd())


def _root_invoker_control(run_dir: Path) -> dict[str, Any]:
    """The user rule applied to a root invoker, on a directory owned by an ordinary uid (it must pick that
    uid) and on a root-owned one (it must refuse): the method works where the host allows it."""
    owned = run_dir / "owned-by-user"
    owned.mkdir()
    out: dict[str, Any] = {}
    try:
        if os.geteuid() == 0:
            os.chown(owned, 4242, 4242)
        choice = resolve_user(None, None, {}, owned, invoker=(0, 0), process_env={})
        out["user_owned"] = {"uid": choice.uid, "why": choice.why, "owner": owned.stat().st_uid}
    except (OSError, UserError) as exc:
        out["user_owned"] = {"error": str(exc)}
    try:
        resolve_user(None, None, {}, Path("/"), invoker=(0, 0), process_env={})
        out["root_owned"] = {"refused": False}
    except UserError as exc:
        out["root_owned"] = {"refused": True, "message": str(exc)}
    return out


def _mode(path: Path) -> str | None:
    try:
        return f"{stat.S_IMODE(path.lstat().st_mode):04o}"
    except OSError:
        return None


def _size_bytes(text: str) -> int:
    """Docker-style sizes: 512m, 2g, 1024k, 1073741824."""
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = (
        text.strip().lower().removesuffix("b")
        if text.strip().lower().endswith(("kb", "mb", "gb", "tb"))
        else text.strip().lower()
    )
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def _pick_public(used: list[str], rng: random.Random) -> str:
    """A free /27 of TEST-NET-2/3 for the audit's public-looking network."""
    taken = []
    for text in used:
        with contextlib.suppress(ValueError):
            taken.append(ipaddress.ip_network(text, strict=False))
    taken += host_routes()
    slices = [s for pool in _PUBLIC_POOLS for s in ipaddress.ip_network(pool).subnets(new_prefix=27)]
    rng.shuffle(slices)
    for candidate in slices:
        if not any(candidate.version == t.version and candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise RunError("no free TEST-NET /27 left for the audit's upstream network (other audits running?)")


def _upper_half(subnet: str) -> str:
    return str(list(ipaddress.ip_network(subnet).subnets(prefixlen_diff=1))[1])


def _nth(subnet: str, n: int) -> str:
    return str(ipaddress.ip_network(subnet)[n])


class _Streamed:
    """A one-shot container's output read on a thread: JSON lines (results, phases) and stderr."""

    def __init__(self, stream: AttachedStream, on_line: Callable[[dict[str, Any]], None]) -> None:
        self.stream = stream
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.raw: list[str] = []  # every stdout line as text (the forged-events probe's lines are not JSON)
        self._on_line = on_line
        self._buf = {1: b"", 2: b""}
        self.thread = threading.Thread(target=self._read, name="sandbox-audit-stream", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(DockerError, OSError):
            for stream_id, chunk in self.stream.frames():
                key = 1 if stream_id == STDOUT else 2
                self._buf[key] += chunk
                *complete, self._buf[key] = self._buf[key].split(b"\n")
                for raw in complete:
                    self._line(key, raw)
        for key, rest in self._buf.items():
            if rest.strip():
                self._line(key, rest)

    def _line(self, key: int, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return
        if key == 2:
            self.stderr.append(text)
            return
        self.raw.append(text)
        try:
            obj = json.loads(text)
        except ValueError:
            self.stderr.append(text)
            return
        if isinstance(obj, dict):
            self.lines.append(obj)
            self._on_line(obj)

    def results(self) -> dict[str, dict[str, Any]]:
        return {str(o["id"]): o["data"] for o in self.lines if o.get("type") == "result"}

    def done(self) -> bool:
        return any(o.get("type") == "done" for o in self.lines)


class _Audit:
    def __init__(
        self,
        plan: SandboxPlan,
        config: PerstackConfig,
        env: Mapping[str, str],
        backend: ContainerBackend | None,
        settings: AuditSettings,
    ) -> None:
        self.plan = plan
        self.config = config
        # The sandbox `sandbox plan` shows and `sandbox run` starts (`sandbox.resolve`): same CA, same render.
        self.resolved = resolve_sandbox(config, plan)
        self.env = dict(env)
        self.settings = settings
        self.err: IO[str] = settings.stderr or sys.stderr
        # What the audit creates, and its teardown: the executor's own (`sandbox.docker.SandboxSession`).
        self.session = SandboxSession(backend, environ=self.env, name="sandbox-audit")
        self.session.before_removal(self._close_listener)
        self.listener: HostListener | None = None
        self.run_id = secrets.token_hex(6)
        self.nonce = secrets.token_hex(8)
        self.marker = f"sandbox-audit-marker-{self.nonce}"
        self.event_key = new_key()  # for the forged-events probe, on stdin like a run's (sandbox._wire)
        self.symlinks: dict[str, str] = {}
        self.helper_image = ""

    @property
    def backend(self) -> ContainerBackend:
        return self.session.backend

    @property
    def pool(self) -> ThreadPoolExecutor:
        return self.session.pool

    @property
    def containers(self) -> Mapping[str, str]:
        """The audit's containers by role, as recorded in the session."""
        return self.session.containers

    @property
    def run_dir(self) -> Path | None:
        return self.session.run_dir

    def say(self, text: str) -> None:
        print(f"sandbox audit: {text}", file=self.err, flush=True)

    # ------------------------------------------------------------------------------------------ main

    def run(self) -> AuditReport:
        started = time.monotonic()
        backend = self.backend
        backend.ping()
        choice = _user(self.settings, self.env)
        uid, gid = choice.uid, choice.gid
        _ = self.resolved.ca_bundle  # an unreadable CA bundle fails here, before anything is created
        labels = {
            **run_labels(
                run_id=self.run_id,
                job_id=f"audit-{self.run_id}",
                deadline=time.time() + self.settings.timeout_s + 900 + _GC_GRACE_S,
            ),
            "sandbox.audit": "1",
        }
        run_dir = self.session.run_dir = make_run_dir(self.settings.temp_root, self.run_id, labels)
        workspace = self._workspace(uid, gid)
        layout = self.settings.layout or UserLayout(workspace=Path.cwd())
        owner = (uid, gid) if os.getuid() == 0 and (uid, gid) != (0, 0) else None
        replica = build_replica(workspace, layout.workspace, layout.steering, self.marker, owner)
        # As `sandbox run` binds it: through a nosuid,nodev mount when this process may make one.
        mounted = nosuid_workspace(workspace, run_dir, name="workspace-mount")
        project = f"sandbox-audit-{self.run_id}"
        rng = random.SystemRandom()

        # Subnets first: the proxy's static hosts name the upstream's addresses, so they are rendered in.
        used = backend.used_subnets()
        attempt = 0
        while True:
            internal = pick_subnet(used)
            lan = pick_subnet([*used, internal])
            public = _pick_public([*used, internal, lan], rng)
            upstream_ip, private_ip = _nth(public, 10), _nth(lan, 10)
            site_run = RunSite(
                project=project,
                workspace=mounted or workspace,
                uid=uid,
                gid=gid,
                internal_subnet=internal,
                labels=labels,
                hidden=replica.dirs,
                masked=replica.files,
            )
            real_ctx = self.resolved.render(site_run)
            aplan = audit_plan(self.plan, upstream_ip=upstream_ip, private_ip=private_ip)
            ctx = self.resolved.render(site_run, plan=aplan)
            additions = check_additions(
                proxy_policy(self.plan, (internal,)), proxy_policy(aplan, (internal,))
            )
            same = {
                "images": (real_ctx.expert_image, real_ctx.proxy_image)
                == (ctx.expert_image, ctx.proxy_image),
                "compose": real_ctx.files["compose.yaml"] == ctx.files["compose.yaml"],
                "additions_only": True,
                "additions": additions,
            }
            if attempt == 0:
                self._images(ctx, labels)
            ctx.write(run_dir)
            compose = load_compose(run_dir / "compose.yaml")
            control_dir = self._control_config(internal, upstream_ip, private_ip)
            nets = self._network_specs(compose, project, public, lan, labels)
            try:
                self.session.create_networks(nets.values())
                break
            except SubnetTaken:
                attempt += 1
                self.session.remove_networks()
                if attempt >= _SUBNET_ATTEMPTS:
                    raise
                used = [*backend.used_subnets(), internal, lan, public]

        helper = self.helper_image
        specs = self._specs(compose, nets, helper, control_dir, labels, upstream_ip, private_ip)
        self.say("starting the sandbox, its proxy and the audit's upstream")
        self._start_services(specs)
        ca_pem = self._wait_ready(specs)

        self.listener = HostListener()
        expected_env = self._expected_env(compose.services["expert"])
        control_value = compose.services["expert"].environment.get("SANDBOX_PROXY_URL", "")
        site = self._site(
            compose, nets, uid, upstream_ip, private_ip, ca_pem, workspace, expected_env, control_value
        )
        site = replace(
            site,
            steering_masked=replica.files,
            steering_creatable=replica.creatable,
            steering_control=replica.control_read,
            steering_control_create=replica.control_create,
        )
        catalog = build_catalog(site)
        if not self.settings.resources:
            catalog = [
                p for p in catalog if not p.id.startswith(("res.fork", "res.memory", "res.tmpfs", "res.host"))
            ]
        inside = [s for p in catalog for s in p.inside]
        outside = [s for p in catalog for s in p.outside]
        canaries = {
            name: f"sandbox-audit-canary-{secrets.token_hex(12)}"
            for name in (*self.plan.env.required, *self.plan.env.optional)
        }
        hosts = secret_values(self.env, (*self.plan.env.required, *self.plan.env.optional))
        hashes = (
            [*secret_hashes(hosts), secret_hashes([control_value])[0]]
            if control_value
            else secret_hashes(hosts)
        )

        monitor = ResponsivenessMonitor(backend.ping)
        monitor.baseline()
        self.say(f"running {len(inside)} probes inside the sandbox and {len(outside)} controls outside")
        since = time.time_ns()
        expert_run, control_run = self._run_batches(specs, inside, outside, canaries, hashes, monitor)
        monitor.stop()
        leftovers = scan_workspace(workspace, since)

        evidence = Evidence(inside=expert_run.results(), control=control_run.results())
        evidence.host["event_wire"] = judge_wire(expert_run.raw, self.event_key)
        self._collect(evidence, specs, catalog_size=len(inside))
        evidence.host.update(
            {
                "listener_from_host": self.listener.reachable_from_host(
                    list(site.host_ipv4) or ["127.0.0.1"]
                ),
                "responsiveness": monitor.summary(),
                "same_sandbox": same,
                "symlink_host_read": self._host_reads_symlink(workspace, site.marker),
                "steering_layout": {
                    "same": replica.files == replica.real_files
                    and set(replica.real_dirs) <= set(replica.dirs),
                    "real": [*replica.real_dirs, *replica.real_files],
                    "replica": [*replica.dirs, *replica.files],
                },
                "steering_undo": settle_replica(replica, run_dir / "quarantine"),
                **host_checks(self.plan, self.config, layout, run_dir),
                "workspace_mount": {"can_mount": can_mount(), "nosuid_mount": mounted is not None},
                "leftovers": {
                    "findings": [dataclasses.asdict(f) for f in leftovers.findings],
                    "suid_mode_after": _mode(workspace / "audit-suid"),
                },
                "root_invoker": {
                    "invoker": os.getuid(),
                    "uid": uid,
                    "why": choice.why,
                    "control": _root_invoker_control(run_dir),
                },
            }
        )
        hits, control_found = self._inspect_secrets(
            self.containers.get("expert"), [*canaries.values(), *hosts], control_value
        )
        evidence.host["inspect_hits"] = hits
        evidence.host["inspect_control"] = control_found
        if not expert_run.done():
            state = backend.container_state(self.containers["expert"])
            tail = "\n".join(expert_run.stderr[-10:])
            self.say(f"the probe program did not finish (state {state}); last stderr lines:\n{tail}")

        if self.settings.evidence_path is not None:
            self.settings.evidence_path.write_text(
                json.dumps(
                    {"site": site_to_json(site), "evidence": evidence_to_json(evidence)},
                    indent=1,
                    default=str,
                )
            )
        outcomes = judge_all(catalog, evidence)
        return AuditReport(
            expert=self.plan.expert,
            outcomes=outcomes,
            seconds=time.monotonic() - started,
            sandbox={
                "expertImage": ctx.expert_image,
                "proxyImage": ctx.proxy_image,
                "helperImage": helper,
                "user": f"{uid}:{gid}",
                "limits": self.plan.limits.model_dump(by_alias=True),
                "allowlist": list(self.plan.allowed_domains),
                "auditAdditions": additions,
            },
        )

    # ------------------------------------------------------------------------------------------ setup

    def _workspace(self, uid: int, gid: int) -> Path:
        """A fresh workspace with symlinks pointing at host files, and a host-only canary next to it."""
        assert self.run_dir is not None
        canary = self.run_dir / "host-canary.txt"
        canary.write_text(self.marker + "\n")
        canary.chmod(0o644)
        workspace = self.run_dir / "workspace"
        workspace.mkdir(mode=0o755)
        self.symlinks = {
            "escape-file": str(canary),
            "escape-home": str(Path.home()),
            "escape-shadow": "/etc/shadow",
            "escape-root": "/",
        }
        for name, target in self.symlinks.items():
            (workspace / name).symlink_to(target)
        if os.getuid() == 0 and (uid, gid) != (0, 0):
            os.chown(workspace, uid, gid)
        return workspace

    def _images(self, ctx: Any, labels: Mapping[str, str]) -> None:
        reporter = ConsoleBuildReporter(self.err) if self.settings.progress else NullReporter()
        try:
            images = ensure_images(
                self.backend,
                ctx,
                self.plan,
                reporter=reporter,
                cache=SkillsCache.default(self.env),
                skills=False,
                pool=self.pool,
            )
        finally:
            reporter.close()
        if images.built:
            self.say(f"built {', '.join(images.built)} in {images.seconds:.1f}s")
        self.helper_image = ensure_helper_image(
            self.backend, self.plan.base_image, {TOOL_LABEL: TOOL_NAME}, log=(lambda _l: None)
        )

    def _control_config(self, internal: str, upstream_ip: str, private_ip: str) -> Path:
        assert self.run_dir is not None
        directory = self.run_dir / "proxy-control" / "config"
        directory.mkdir(parents=True, exist_ok=True)
        for parent in (directory.parent, directory):
            parent.chmod(0o755)
        files = render_squid(control_policy(subnet=internal, upstream_ip=upstream_ip, private_ip=private_ip))
        for name, text in files.items():
            path = directory / name
            path.write_text(text)
            path.chmod(0o644)
        return directory

    def _network_specs(
        self, compose: ComposeProject, project: str, public: str, lan: str, labels: Mapping[str, str]
    ) -> dict[str, NetworkSpec]:
        nets = dict(compose.networks)
        nets["audit-public"] = NetworkSpec(
            name=f"{project}_audit-public",
            internal=True,
            subnet=public,
            ip_range=_upper_half(public),
            labels=labels,
        )
        nets["audit-lan"] = NetworkSpec(
            name=f"{project}_audit-lan", internal=True, subnet=lan, ip_range=_upper_half(lan), labels=labels
        )
        return nets

    def _specs(
        self,
        compose: ComposeProject,
        nets: Mapping[str, NetworkSpec],
        helper: str,
        control_dir: Path,
        labels: Mapping[str, str],
        upstream_ip: str,
        private_ip: str,
    ) -> dict[str, ContainerSpec]:
        project = compose.name
        public, lan = nets["audit-public"].name, nets["audit-lan"].name
        internal = nets["internal"]
        proxy = compose.services["proxy"]
        expert = compose.services["expert"]
        hardening: dict[str, Any] = {
            "read_only": True,
            "cap_drop": ("ALL",),
            "tmpfs": {"/tmp": "size=16m,mode=1777"},  # noqa: S108
            "mem_limit": "256m",
            "memswap_limit": "256m",
            "pids_limit": 256,
        }

        def helper_labels(role: str) -> dict[str, str]:
            return {**labels, ROLE_LABEL: role}

        upstream_args = [
            "--nonce",
            self.nonce,
            *[a for n in audit_names() for a in ("--name", n)],
            "--tls",
            "443",
            "--tls",
            "8443",
            "--http",
            "80",
            "--banner",
            "22",
            "--udp",
            "443",
            "--dns",
            "53",
        ]
        return {
            "upstream": ContainerSpec(
                name=f"{project}-audit-upstream-1",
                service="audit-upstream",
                image=helper,
                entrypoint=("python3", f"{HELPER_DIR}/_upstream.py"),
                command=tuple(upstream_args),
                user="0:0",
                cap_add=("NET_BIND_SERVICE",),
                security_opt=("no-new-privileges:true",),
                labels=helper_labels("audit-upstream"),
                networks=(NetworkAttachment(public, upstream_ip), NetworkAttachment(lan, private_ip)),
                **hardening,
            ),
            "proxy": replace(
                proxy, networks=(*proxy.networks, NetworkAttachment(public), NetworkAttachment(lan))
            ),
            "control-proxy": replace(
                proxy,
                name=f"{project}-audit-control-proxy-1",
                service="audit-control-proxy",
                mounts=(Mount(str(control_dir), PROXY_CONFIG_DIR, read_only=True),),
                labels={**proxy.labels, ROLE_LABEL: "audit-control-proxy"},
                networks=(
                    NetworkAttachment(internal.name, _nth(internal.subnet or "", 3)),
                    NetworkAttachment(public),
                    NetworkAttachment(lan),
                ),
            ),
            "expert": replace(expert, entrypoint=EXPERT_PROBE_ENTRYPOINT, command=None),
            # The control runner: trusted code only, so it may hold the capabilities its controls need.
            "control": ContainerSpec(
                name=f"{project}-audit-control-1",
                service="audit-control",
                image=helper,
                entrypoint=("python3", f"{HELPER_DIR}/_probes.py"),
                user="0:0",
                stdin_open=True,
                cap_add=("NET_RAW", "SETUID", "SETGID", "CHOWN", "MKNOD", "SYS_CHROOT"),
                labels=helper_labels("audit-control"),
                networks=(NetworkAttachment(public), NetworkAttachment(lan)),
                **hardening,
            ),
        }

    def _start_services(self, specs: Mapping[str, ContainerSpec]) -> None:
        def up(key: str) -> None:
            cid = self.backend.create_container(specs[key])
            self.session.record_container(key, cid)
            self.backend.start_container(cid)

        futures = {key: self.pool.submit(up, key) for key in ("upstream", "proxy", "control-proxy")}
        for key, future in futures.items():
            try:
                future.result()
            except DockerError as exc:
                raise RunError(f"the audit could not start its {key}: {exc}") from exc

    def _wait_ready(self, specs: Mapping[str, ContainerSpec], timeout: float = 30.0) -> str:
        """Wait for both proxies' ready lines and the upstream's; returns the upstream's CA (PEM)."""
        deadline = time.monotonic() + timeout
        waiting = {"upstream", "proxy", "control-proxy"}
        ca = ""
        while waiting and time.monotonic() < deadline:
            for key in sorted(waiting):
                lines = self.backend.container_logs(self.containers[key], tail=200)
                if key == "upstream":
                    for line in lines:
                        if line.startswith(UPSTREAM_PREFIX + "ca "):
                            ca = base64.b64decode(line.split()[-1]).decode()
                    if ca and any(line == UPSTREAM_PREFIX + "ready" for line in lines):
                        waiting.discard(key)
                elif any(is_proxy_ready_line(line) for line in lines):
                    waiting.discard(key)
                state = self.backend.container_state(self.containers[key])
                if key in waiting and state is not None and not state.running:
                    tail = "\n  ".join(lines[-15:])
                    raise RunError(
                        f"the audit's {key} exited (code {state.exit_code}) before it was ready:\n  {tail}"
                    )
            time.sleep(0.05)
        if waiting:
            raise RunError(
                f"the audit's {', '.join(sorted(waiting))} did not become ready within {timeout:.0f}s"
            )
        return ca

    def _expected_env(self, spec: ContainerSpec) -> frozenset[str] | None:
        """The container's environment as planned: compose's variables, the image's ENV, Docker's HOSTNAME."""
        api = getattr(self.backend, "api", None)
        if api is None:
            return None
        try:
            config = api.inspect_image(spec.image)["Config"]
        except Exception:
            return None
        image_names = {str(e).partition("=")[0] for e in config.get("Env") or []}
        return frozenset({*spec.environment, *image_names, "HOSTNAME"})

    def _site(
        self,
        compose: ComposeProject,
        nets: Mapping[str, NetworkSpec],
        uid: int,
        upstream_ip: str,
        private_ip: str,
        ca_pem: str,
        workspace: Path,
        expected_env: frozenset[str] | None,
        control_value: str,
    ) -> Site:
        assert self.run_dir is not None and self.listener is not None
        internal = nets["internal"].subnet or ""
        proxy_ip = _nth(internal, 2)
        limits = self.plan.limits
        home = str(Path.home())
        host_paths = {
            k: v
            for k, v in {
                "workspace": file_id(workspace),
                "home": file_id(home),
                "shadow": file_id("/etc/shadow"),
                "rundir": file_id(self.run_dir),
                "root": file_id("/"),
            }.items()
            if v is not None
        }
        opt_ins = []
        for entry in self.plan.network.allow_private:
            host, _, port = entry.rpartition(":")
            opt_ins.append((host.strip("[]"), int(port)))
        return Site(
            nonce=self.nonce,
            proxy=f"{proxy_ip}:{PROXY_PORT}",
            control_proxy=f"{_nth(internal, 3)}:{PROXY_PORT}",
            proxy_name=compose.services["proxy"].name,
            proxy_ip=proxy_ip,
            gateway=_nth(internal, 1),
            upstream_ip=upstream_ip,
            upstream_private_ip=private_ip,
            control_gateway=_nth(nets["audit-public"].subnet or "", 1),
            listener_port=self.listener.port,
            cadata=ca_pem,
            uid=uid,
            memory_bytes=_size_bytes(limits.memory),
            pids=limits.pids,
            tmpfs_bytes=_size_bytes(limits.tmpfs_size),
            fsize_bytes=limits.workspace_quota_bytes,
            cpus=limits.cpus,
            host_ipv4=tuple(host_ipv4()),
            host_ipv6=tuple(host_ipv6()),
            plan_domains=self.plan.allowed_domains,
            plan_opt_ins=tuple(opt_ins),
            host_paths=host_paths,
            home=home,
            rundir=str(self.run_dir),
            marker=self.marker,
            symlinks=self.symlinks,
            expected_env=expected_env,
            control_hash=secret_hashes([control_value])[0] if control_value else "",
        )

    # ------------------------------------------------------------------------------------------ probes

    def _run_batches(
        self,
        specs: Mapping[str, ContainerSpec],
        inside: list[dict[str, Any]],
        outside: list[dict[str, Any]],
        canaries: Mapping[str, str],
        hashes: list[str],
        monitor: ResponsivenessMonitor,
    ) -> tuple[_Streamed, _Streamed]:
        def on_expert_line(obj: dict[str, Any]) -> None:
            if obj.get("type") == "phase" and obj.get("phase") == "resources":
                (monitor.start if obj.get("state") == "start" else monitor.stop)()

        def launch(key: str, payload: dict[str, Any], on_line: Callable[[dict[str, Any]], None]) -> _Streamed:
            cid = self.backend.create_container(specs[key])
            self.session.record_container(key, cid)
            stream = self.session.add_stream(self.backend.attach(cid, stdin=True))
            reader = _Streamed(stream, on_line)
            self.backend.start_container(cid)
            stream.send((json.dumps(payload, separators=(",", ":")) + "\n").encode())
            stream.close_stdin()
            return reader

        expert_payload = {
            "env": dict(canaries),
            "hostSecrets": hashes,
            "probes": inside,
            "workers": 48,
            "eventKey": self.event_key,
        }
        control_payload = {"probes": outside, "workers": 16}
        expert_f = self.pool.submit(launch, "expert", expert_payload, on_expert_line)
        control_f = self.pool.submit(launch, "control", control_payload, lambda _o: None)
        expert_run, control_run = expert_f.result(), control_f.result()
        deadline = time.monotonic() + self.settings.timeout_s
        for run, key in ((expert_run, "expert"), (control_run, "control")):
            run.thread.join(timeout=max(1.0, deadline - time.monotonic()))
            if run.thread.is_alive():
                self.say(f"the {key} probes exceeded {self.settings.timeout_s:.0f}s; stopping them")
                with contextlib.suppress(DockerError):
                    self.backend.kill_container(self.containers[key])
                run.thread.join(timeout=10)
        return expert_run, control_run

    def _logs(self, key: str) -> list[str]:
        cid = self.containers.get(key)
        if cid is None:
            return []
        with contextlib.suppress(DockerError):
            return self.backend.container_logs(cid, tail=20000)
        return []

    def _collect(self, evidence: Evidence, specs: Mapping[str, ContainerSpec], catalog_size: int) -> None:
        """The proxies' decisions and the upstream's log; waits until the proxy log stops growing (it logs a
        tunnel when the tunnel closes, a moment after the client saw its answer)."""
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 8
        accesses: list[ProxyAccess] = []
        while time.monotonic() < deadline:
            accesses = [a for a in map(parse_proxy_log_line, self._logs("proxy")) if a is not None]
            if len(accesses) != last:
                last, stable_since = len(accesses), time.monotonic()
            elif time.monotonic() - stable_since > 0.5:
                break
            time.sleep(0.1)
        evidence.proxy_log = accesses
        evidence.control_proxy_log = [a for a in map(parse_proxy_log_line, self._logs("control-proxy")) if a]
        evidence.upstream_log = self._logs("upstream")

    def _host_reads_symlink(self, workspace: Path, marker: str) -> bool:
        try:
            return marker in (workspace / "escape-file").read_text()
        except OSError:
            return False

    def _inspect_secrets(
        self, cid: str | None, values: list[str], control: str
    ) -> tuple[list[str] | None, bool]:
        api = getattr(self.backend, "api", None)
        if api is None or cid is None:
            return None, False
        try:
            text = json.dumps(api.inspect_container(cid))
        except Exception:
            return None, False
        hits = [f"value #{i + 1}" for i, v in enumerate(values) if v and v in text]
        return hits, bool(control) and control in text

    # ------------------------------------------------------------------------------------------ teardown

    def _close_listener(self) -> None:
        if self.listener is not None:
            self.listener.close()

    def teardown(self) -> None:
        """Remove everything the audit created (`SandboxSession.teardown`); never raises (leftovers are
        reported with the fix)."""
        problems = self.session.teardown()
        if problems:
            self.say("could not remove: " + "; ".join(problems) + " (run `sandbox clean` to retry)")


def run_audit(
    plan: SandboxPlan,
    config: PerstackConfig,
    env: Mapping[str, str],
    *,
    backend: ContainerBackend | None = None,
    settings: AuditSettings | None = None,
) -> AuditReport:
    """Audit the sandbox of `plan.expert`: build it, probe it from inside, control from outside, judge.

    `env` is the host's private environment map (it supplies DOCKER_HOST, SANDBOX_USER and the host's secret
    values the audit checks never reach the sandbox; no secret is ever sent into it). Raises `SandboxError`s
    for what prevents an audit (no engine, a failed build, a sandbox that will not start); everything that
    was created is removed in every case.
    """
    audit = _Audit(plan, config, env, backend, settings or AuditSettings())
    try:
        return audit.run()
    finally:
        audit.teardown()
