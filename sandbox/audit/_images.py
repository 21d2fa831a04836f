"""The audit's helper image: a trusted Debian + python3 image that runs the upstream and the controls.

Why not the Expert's image: the Expert's image contains its skill packages, which are untrusted (an npm
postinstall script ran as root at build time and could have planted code anywhere, including Python's
site-packages). The controls must run *outside* the sandbox, so they must not run that code. The helper
image is built from the same base image as the proxy (the user's choice) plus Debian's python3 and openssl,
and holds only this package's two stdlib-only programs. Its tag is a content hash (base image, Dockerfile,
programs), so it is built once per machine and shared by every Expert's audit.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

from sandbox._errors import BuildError
from sandbox.docker import BuildRequest, ContainerBackend

__all__ = ["HELPER_DIR", "HELPER_DOCKERFILE", "ensure_helper_image", "helper_context", "helper_tag"]

HELPER_DIR = "/opt/sandbox-audit"

HELPER_DOCKERFILE = """\
# The sandbox audit's helper image: python3 + openssl on the sandbox's base image, and the audit's two
# standard-library programs. Runs the audit's upstream and its control probes, never Expert code.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
LABEL sandbox.tool="perstack-sandbox" sandbox.kind="audit"
RUN set -eu; \\
    if ! command -v python3 >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then \\
        apt-get update; \\
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 openssl; \\
        rm -rf /var/lib/apt/lists/*; \\
    fi; \\
    python3 --version; openssl version
COPY _probes.py _upstream.py /opt/sandbox-audit/
RUN chmod 0644 /opt/sandbox-audit/*.py
"""

_PROGRAMS = ("_probes.py", "_upstream.py")


def helper_context() -> dict[str, bytes]:
    """The build context's files (Dockerfile and the two programs of this package)."""
    here = Path(__file__).resolve().parent
    files = {"Dockerfile": HELPER_DOCKERFILE.encode()}
    for name in _PROGRAMS:
        files[name] = (here / name).read_bytes()
    return files


def helper_tag(base_image: str, files: dict[str, bytes] | None = None) -> str:
    """`sandbox-audit:<hash>` of the base image reference and the context."""
    h = hashlib.sha256(base_image.encode() + b"\0")
    for name, data in sorted((files or helper_context()).items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return f"sandbox-audit:{h.hexdigest()[:16]}"


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def ensure_helper_image(
    backend: ContainerBackend,
    base_image: str,
    labels: dict[str, str],
    log: Callable[[str], None] = lambda _line: None,
) -> str:
    """Build the helper image unless its tag exists; return the tag. A failed build is a BuildError."""
    files = helper_context()
    tag = helper_tag(base_image, files)
    if backend.image_exists(tag):
        return tag
    if not backend.image_exists(base_image):
        raise BuildError(
            f"the base image {base_image} is not present (the audit's helper image builds on it); "
            "`sandbox build EXPERT` pulls or builds what a run needs"
        )
    tail: deque[str] = deque(maxlen=15)
    request = BuildRequest(
        tag=tag,
        context_tar=_tar(files),
        service="audit-helper",
        buildargs={"BASE_IMAGE": base_image},
        labels={**labels, "sandbox.kind": "audit"},
    )
    for message in backend.build(request):
        if "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail") or {}
            text = str(message.get("error") or detail.get("message") or "unknown error").strip()
            raise BuildError(f"building the audit's helper image {tag} failed: {text}", log_tail=list(tail))
        chunk = message.get("stream")
        if isinstance(chunk, str):
            for line in chunk.splitlines():
                if line.strip():
                    tail.append(line.rstrip())
                    log(line.rstrip())
    if not backend.image_exists(tag):
        raise BuildError(f"building {tag} finished without tagging the image", log_tail=list(tail))
    return tag
