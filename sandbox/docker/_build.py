"""Images: skip when the content-addressed tags exist, otherwise build them with live progress.

Why content-addressed tags are the whole cache: the render names each image after a hash of exactly the files
it is built from (`sandbox-expert:<hash>`, `sandbox-proxy:<hash>`), so "does the tag exist" answers "is the
image up to date" without any build step, layer probing or timestamp. A warm run therefore costs two
`inspect` calls here.

Builds use the engine's legacy builder with an in-memory, deterministic tar of only the files the image
needs (not the rendered proxy config, plan or compose file, which change per run and would bust the cache).
A failing instruction becomes a `BuildError` naming the image, the step and its last log lines. Nothing is
ever pulled: a missing base image is reported with the command that fixes it, before the builder would try.

After building the expert image the skill lock it recorded (/opt/sandbox/skills.lock.json: the exact
versions npm and uv resolved) is copied to the host cache, so `sandbox build` and `sandbox run` can show
which versions run without starting anything.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sandbox._errors import BuildError, DockerError
from sandbox.jobs import atomic_write
from sandbox.plan import SandboxPlan
from sandbox.render import RenderedContext
from sandbox.skills_lock import InstalledPackage, SkillsLock

from ._backend import BuildRequest, ContainerBackend
from ._labels import CREATED_LABEL, TOOL_LABEL, TOOL_NAME
from ._progress import BuildReporter

__all__ = [
    "SKILLS_LOCK_PATH",
    "BuildCancelled",
    "ImageSet",
    "SkillsCache",
    "context_tar",
    "ensure_images",
    "format_skills",
]

SKILLS_LOCK_PATH = "/opt/sandbox/skills.lock.json"
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_TAIL = 15
_OFFLINE_HINT = (
    "pull it (`docker pull {image}`), or on an offline machine build the local base images with "
    "`bash scripts/base-image.sh` and pass --base-image sandbox-base:bookworm --node-image sandbox-node:22"
)


class BuildCancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A signal arrived during a build; the caller tears down and exits 130/143."""


@dataclass(frozen=True)
class ImageSet:
    """The images a run uses, what had to be built for it, and the skill versions the expert image holds."""

    expert: str
    proxy: str
    built: tuple[str, ...]
    skills: SkillsLock | None
    seconds: float


def context_tar(files: Mapping[str, bytes], *, prefix: str = "", exclude: tuple[str, ...] = ()) -> bytes:
    """A deterministic, uncompressed tar of `files` under `prefix` (re-rooted), minus `exclude` prefixes.

    Fixed owner, mode and mtime: the legacy builder's COPY cache then hits whenever the bytes are the same.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            if not name.startswith(prefix) or any(name.startswith(e) for e in exclude):
                continue
            rel = name[len(prefix) :]
            info = tarfile.TarInfo(rel)
            info.size = len(files[name])
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def _expert_request(ctx: RenderedContext, labels: Mapping[str, str]) -> BuildRequest:
    return BuildRequest(
        tag=ctx.expert_image,
        context_tar=context_tar(ctx.files, exclude=("proxy/", "expert/", "compose.yaml")),
        service="expert",
        labels={**labels, "sandbox.kind": "expert"},
    )


def _proxy_request(ctx: RenderedContext, plan: SandboxPlan, labels: Mapping[str, str]) -> BuildRequest:
    return BuildRequest(
        tag=ctx.proxy_image,
        context_tar=context_tar(ctx.files, prefix="proxy/", exclude=("proxy/config/",)),
        service="proxy",
        buildargs={"BASE_IMAGE": plan.base_image},
        labels={**labels, "sandbox.kind": "proxy"},
    )


def _run_build(
    backend: ContainerBackend, request: BuildRequest, reporter: BuildReporter, cancelled: Callable[[], bool]
) -> None:
    """Stream one build; turn an `error` message into a BuildError with the step and the log tail."""
    step: tuple[int, int, str] | None = None
    tail: deque[str] = deque(maxlen=_TAIL)
    reporter.begin(request.service, request.tag)
    started = time.monotonic()
    try:
        for message in backend.build(request):
            if cancelled():
                raise BuildCancelled()
            if "error" in message or "errorDetail" in message:
                detail = message.get("errorDetail") or {}
                text = str(message.get("error") or detail.get("message") or "unknown error").strip()
                raise _build_error(request, step, text, list(tail))
            chunk = message.get("stream") or message.get("status")
            if not isinstance(chunk, str):
                continue
            for raw in chunk.splitlines():
                line = raw.rstrip()
                if not line.strip():
                    continue
                found = _STEP.match(line)
                if found:
                    step = (int(found.group(1)), int(found.group(2)), found.group(3))
                    reporter.step(request.service, *step)
                    tail.clear()
                else:
                    tail.append(line)
                    reporter.log(request.service, line)
        if not backend.image_exists(request.tag):
            raise _build_error(request, step, "the builder finished without tagging the image", list(tail))
    except BaseException as exc:
        reporter.end(request.service, False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    reporter.end(request.service, True, f"built {request.tag} in {time.monotonic() - started:.1f}s")


def _build_error(
    request: BuildRequest, step: tuple[int, int, str] | None, text: str, tail: list[str]
) -> BuildError:
    where = f" at step {step[0]}/{step[1]} ({step[2]})" if step else ""
    lines = [f"building the {request.service} image {request.tag} failed{where}: {text}"]
    if tail:
        lines.append("last log lines:")
        lines += [f"  {line}" for line in tail]
    return BuildError("\n".join(lines), step=step[2] if step else None, log_tail=tail)


class SkillsCache:
    """The host's record of which skill versions each expert image holds (label-free, one file per tag).

    Lives under `$XDG_CACHE_HOME/sandbox/skills/` (default `~/.cache/sandbox/skills/`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def default(cls, env: Mapping[str, str]) -> SkillsCache:
        base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
        return cls(Path(base) / "sandbox" / "skills")

    def path(self, image: str) -> Path:
        return self.root / (re.sub(r"[^A-Za-z0-9_.-]", "-", image) + ".json")

    def get(self, image: str) -> SkillsLock | None:
        try:
            data = json.loads(self.path(image).read_text())
        except (OSError, ValueError):
            return None
        return _lock_from_json(data.get("lock", {})) if isinstance(data, dict) else None

    def put(self, image: str, raw: bytes) -> SkillsLock:
        lock = _lock_from_json(json.loads(raw))
        self.root.mkdir(parents=True, exist_ok=True)
        body = {"image": image, "recordedAt": int(time.time()), "lock": json.loads(raw)}
        text = json.dumps(body, indent=2, sort_keys=True) + "\n"
        atomic_write(self.path(image), text.encode(), durable=False)
        return lock

    def clear(self) -> int:
        removed = 0
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
        return removed


def _lock_from_json(data: object) -> SkillsLock:
    def section(value: object) -> dict[str, InstalledPackage]:
        out: dict[str, InstalledPackage] = {}
        if isinstance(value, dict):
            for name, body in value.items():
                if isinstance(body, dict):
                    bins = body.get("bins") if isinstance(body.get("bins"), dict) else {}
                    out[str(name)] = InstalledPackage(
                        name=str(name),
                        version=str(body.get("version", "?")),
                        bins={str(k): str(v) for k, v in (bins or {}).items()},
                    )
        return out

    if not isinstance(data, dict):
        return SkillsLock(npm={}, pypi={})
    return SkillsLock(npm=section(data.get("npm")), pypi=section(data.get("pypi")))


def format_skills(lock: SkillsLock | None) -> list[str]:
    """One line per installed skill package: `npm  name  version`."""
    if lock is None:
        return []
    rows = [("npm", p.name, p.version) for p in lock.npm.values()]
    rows += [("pypi", p.name, p.version) for p in lock.pypi.values()]
    return [f"{eco:<5}{name}  {version}" for eco, name, version in sorted(rows)]


def _skills(
    backend: ContainerBackend, image: str, cache: SkillsCache | None, *, refresh: bool
) -> SkillsLock | None:
    if cache is not None and not refresh:
        found = cache.get(image)
        if found is not None:
            return found
    raw = backend.read_file_from_image(image, SKILLS_LOCK_PATH)
    if raw is None:
        return None
    if cache is None:
        return _lock_from_json(json.loads(raw))
    try:
        return cache.put(image, raw)
    except OSError:
        return _lock_from_json(json.loads(raw))


def ensure_images(
    backend: ContainerBackend,
    ctx: RenderedContext,
    plan: SandboxPlan,
    *,
    reporter: BuildReporter,
    labels: Mapping[str, str] | None = None,
    force: bool = False,
    cancelled: Callable[[], bool] = lambda: False,
    cache: SkillsCache | None = None,
    skills: bool = True,
    pool: Executor | None = None,
) -> ImageSet:
    """Make sure both images exist, building what is missing (both in parallel); returns what was done.

    `force` rebuilds even when the tags exist. `skills=False` skips reading the skill lock when nothing was
    built and the cache has no entry (a warm `run` does not need it).
    """
    started = time.monotonic()
    own_pool = pool is None
    executor: Executor = pool or ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-build")
    try:
        exists_expert = executor.submit(backend.image_exists, ctx.expert_image)
        exists_proxy = executor.submit(backend.image_exists, ctx.proxy_image)
        checks = (("proxy", exists_proxy), ("expert", exists_expert))
        missing = [service for service, exists in checks if force or not exists.result()]
        if missing:
            _check_base_images(backend, plan)
            image_labels = {TOOL_LABEL: TOOL_NAME, CREATED_LABEL: str(int(time.time())), **(labels or {})}
            requests = {
                "proxy": lambda: _proxy_request(ctx, plan, image_labels),
                "expert": lambda: _expert_request(ctx, image_labels),
            }
            futures: list[Future[None]] = [
                executor.submit(_run_build, backend, requests[s](), reporter, cancelled) for s in missing
            ]
            errors: list[BaseException] = []
            for future in futures:
                try:
                    future.result()
                except BaseException as exc:
                    errors.append(exc)
            if errors:
                # A cancellation wins over a build error it may have caused.
                raise next((e for e in errors if isinstance(e, BuildCancelled)), errors[0])
        lock = None
        if skills or "expert" in missing:
            lock = _skills(backend, ctx.expert_image, cache, refresh="expert" in missing)
        elif cache is not None:
            lock = cache.get(ctx.expert_image)
        return ImageSet(ctx.expert_image, ctx.proxy_image, tuple(missing), lock, time.monotonic() - started)
    finally:
        if own_pool:
            executor.shutdown(wait=False)


def _check_base_images(backend: ContainerBackend, plan: SandboxPlan) -> None:
    needed = [plan.base_image] + ([plan.node_image] if "node" in plan.runtimes else [])
    missing = [image for image in needed if not backend.image_exists(image)]
    if missing:
        image = missing[0]
        which = "base image" if image == plan.base_image else "Node image"
        raise DockerError(
            f"the {which} {image} is not present locally and sandbox never pulls during a build"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""),
            hint=_OFFLINE_HINT.format(image=image),
        )


def skills_cache_for(env: Mapping[str, str] | None = None) -> SkillsCache:
    """The default skills cache for this user."""
    return SkillsCache.default(env if env is not None else os.environ)
