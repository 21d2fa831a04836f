"""Making one sandbox: rendered, its images made sure of, its run dir written, its networks created, its
proxy and Expert containers started. Shared by a run and by `sandbox warm` (a standby is the same sandbox
with the runtime waiting on stdin), so a standby is exactly what a fresh run would have built.

Everything made is recorded in the caller's `SandboxSession` as it is made; on an error the caller's
teardown removes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sandbox._errors import DockerError, RunError
from sandbox.events import DockerBuildProgress, EventBase
from sandbox.options import RunOptions
from sandbox.plan import SandboxPlan
from sandbox.render import RenderedContext, RunSite
from sandbox.resolve import ResolvedSandbox

from ._backend import AttachedStream, ContainerSpec, SubnetTaken
from ._build import ImageSet, SkillsCache, ensure_images, format_skills
from ._compose import ComposeProject, load_compose
from ._gc import make_run_dir
from ._labels import JOB_LABEL, RUN_LABEL
from ._progress import BuildReporter, ConsoleBuildReporter, EventBuildReporter, TeeReporter
from ._session import SandboxSession
from ._settings import DockerSettings, Hidden
from ._subnet import pick_subnet
from ._workspace_mount import nosuid_workspace

__all__ = ["SandboxBuilder", "Status"]

_SUBNET_ATTEMPTS = 6

Status = Callable[[str, str, "str | None"], None]  # (service, status, message)


class Cancelled(Exception):  # noqa: N818 - control flow: a signal arrived between phases
    """A signal arrived while the sandbox was being made."""


@dataclass
class SandboxBuilder:
    """Makes the sandbox of `plan` for `options` into `session` (see the module docstring).

    `job_id`/`run_id`: what build events and image labels name; `cancelled`: polled between phases.
    """

    session: SandboxSession
    options: RunOptions
    plan: SandboxPlan
    resolved: ResolvedSandbox
    settings: DockerSettings
    err: IO[str]
    emit: Callable[[EventBase], None]
    diag: Callable[[str], None]
    status: Status
    cancelled: Callable[[], bool]
    job_id: str
    run_id: str

    def check_cancel(self) -> None:
        if self.cancelled():
            raise Cancelled()

    def build(
        self, labels: Mapping[str, str], *, uid: int, gid: int, hidden: Hidden, connecting: Future[None]
    ) -> ComposeProject:
        """Render, make sure the images exist, write the run dir, create the networks: the sandbox minus
        its containers. Rendered from the run's resolution, so the images are the ones `sandbox plan` names.
        """
        session = self.session
        session.run_dir = make_run_dir(self.settings.temp_root, self.run_id, labels)
        project = f"sandbox-{self.run_id}"
        workspace = self._workspace_source(session.run_dir, uid)

        def render(subnet: str) -> RenderedContext:
            site = RunSite(
                project=project,
                workspace=workspace,
                uid=uid,
                gid=gid,
                internal_subnet=subnet,
                labels=labels,
                hidden=hidden.dirs,
                masked=hidden.files,
            )
            return self.resolved.render(site)

        # A random /24 is almost never taken; if it is, creating the network says so and we pick again with
        # the engine's list in hand. Rendering meanwhile overlaps the SDK import and the first request.
        subnet = pick_subnet([])
        ctx = render(subnet)
        connecting.result()
        backend = session.backend
        session.mark("rendered")
        self.images(ctx)
        session.mark("images")
        self.check_cancel()
        compose = self._write(ctx)
        for attempt in range(_SUBNET_ATTEMPTS):
            try:
                session.create_networks(compose.networks.values())
                session.mark("networks")
                break
            except DockerError as exc:
                if not isinstance(exc, SubnetTaken) or attempt == _SUBNET_ATTEMPTS - 1:
                    raise
                session.remove_networks()
                subnet = pick_subnet([*backend.used_subnets(), subnet])
                ctx = render(subnet)
                compose = self._write(ctx)
        self.check_cancel()
        return compose

    def _workspace_source(self, run_dir: Path, uid: int) -> Path:
        """What compose binds at /workspace: a nosuid,nodev mount of the workspace when this process may
        make one (`_workspace_mount`), else the workspace itself."""
        workspace = self.options.workspace
        if not self.settings.nosuid_workspace:
            return workspace
        try:
            mounted = nosuid_workspace(workspace.resolve(), run_dir)
        except OSError as exc:
            raise RunError(f"could not mount the workspace nosuid,nodev for the sandbox: {exc}") from None
        if mounted is None and uid == 0:
            self.diag(
                "sandbox: warning: the Expert runs as root and the workspace could not be mounted "
                "nosuid,nodev; set-id bits it sets are removed after the run"
            )
        return mounted or workspace

    def _write(self, ctx: RenderedContext) -> ComposeProject:
        assert self.session.run_dir is not None
        ctx.write(self.session.run_dir)
        return load_compose(self.session.run_dir / "compose.yaml")

    def images(self, ctx: RenderedContext) -> ImageSet:
        """Both images, built unless their content-addressed tags exist (progress on stderr, and as
        `dockerBuildProgress` events with --verbose)."""
        reporters: list[BuildReporter] = []
        if self.settings.progress:
            reporters.append(ConsoleBuildReporter(self.err))
        if self.options.verbose:
            reporters.append(EventBuildReporter(self.emit, job_id=self.job_id, run_id=self.run_id))
        reporter = TeeReporter(*reporters)
        cache = self.settings.skills_cache or SkillsCache.default(self.options.env)
        try:
            images = ensure_images(
                self.session.backend,
                ctx,
                self.plan,
                reporter=reporter,
                labels={RUN_LABEL: self.run_id, JOB_LABEL: self.job_id},
                cancelled=self.cancelled,
                cache=cache,
                skills=False,
                pool=self.session.pool,
            )
        finally:
            reporter.close()
        if images.built:
            for line in format_skills(images.skills):
                self.diag(f"sandbox: skill {line}")
        if self.options.verbose and not images.built:
            self.emit(
                DockerBuildProgress(
                    job_id=self.job_id,
                    run_id=self.run_id,
                    stage="complete",
                    service="expert",
                    message=f"images up to date: {images.expert}, {images.proxy}",
                )
            )
        return images

    def start(
        self,
        proxy_spec: ContainerSpec,
        expert_spec: ContainerSpec,
        *,
        stdin: bool,
        on_proxy: Callable[[AttachedStream], None] | None,
    ) -> AttachedStream:
        """Create and start the proxy and the Expert in parallel; the Expert's stream, attached before start.

        `on_proxy`: given the proxy's stream, attached before it starts (access events, and "the proxy
        died" stops the Expert). A standby being made passes None: `sandbox warm` exits once it is ready,
        and the run that claims it follows the proxy then.
        """
        session, backend = self.session, self.session.backend
        session.specs.update({"proxy": proxy_spec, "expert": expert_spec})
        expert_started = threading.Event()

        def up_proxy() -> None:
            cid = backend.create_container(proxy_spec)
            session.mark("up-proxy-created")
            session.record_container("proxy", cid, proxy_spec)
            if on_proxy is not None:
                on_proxy(session.add_stream(backend.attach(cid, stdin=False)))
            self.status("proxy", "starting", None)
            # The Expert's start-up (Python, the runtime's imports) is the critical path and the proxy is
            # needed only when it makes its first request: let the engine start the Expert first.
            expert_started.wait(10)
            try:
                backend.start_container(cid)
            except DockerError as exc:
                raise RunError(f"the proxy failed to start: {exc}") from exc
            session.mark("up-proxy-started")
            self.status("proxy", "running", None)

        def up_expert() -> AttachedStream:
            cid = backend.create_container(expert_spec)
            session.mark("up-expert-created")
            session.record_container("expert", cid, expert_spec)
            stream = session.add_stream(backend.attach(cid, stdin=stdin))
            session.mark("up-expert-attached")
            self.status("expert", "starting", None)
            try:
                backend.start_container(cid)
            finally:
                expert_started.set()
            session.mark("up-expert-started")
            self.status("expert", "running", None)
            return stream

        proxy_future = session.pool.submit(up_proxy)
        expert_future = session.pool.submit(up_expert)
        errors: list[BaseException] = []
        stream: AttachedStream | None = None
        for name, future in (("proxy", proxy_future), ("expert", expert_future)):
            try:
                result = future.result()
                if name == "expert":
                    stream = result
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        assert stream is not None
        return stream
