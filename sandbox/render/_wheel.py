"""A wheel of the running `sandbox` installation, for the image's runtime layer.

Why: the runtime inside the sandbox must be exactly the host's version (the reference's cached
`npm install -g @perstack/runtime` layer went stale). Packing the files the host is running from,
instead of downloading a release, guarantees that, and works the same for wheel installs and editable
source checkouts. The archive is deterministic (sorted entries, fixed timestamps and modes), so an
unchanged installation gives a byte-identical wheel and the image tag derived from it stays put.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from sandbox._assets import asset_dir
from sandbox._version import __version__

__all__ = ["DIST_NAME", "installation_fingerprint", "runtime_wheel"]

DIST_NAME = "perstack-sandbox"
_WHEEL_NAME = f"perstack_sandbox-{__version__}-py3-none-any.whl"
_DIST_INFO = f"perstack_sandbox-{__version__}.dist-info"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", "_assets"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def _package_files() -> Iterator[tuple[str, Path]]:
    pkg = Path(__file__).resolve().parent.parent
    for path in sorted(pkg.rglob("*")):
        rel = path.relative_to(pkg)
        if not path.is_file() or _SKIP_DIRS.intersection(rel.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        yield f"sandbox/{rel.as_posix()}", path
    assets = asset_dir()
    for section in ("templates", "proxy", "compose"):
        for path in sorted((assets / section).rglob("*")):
            rel = path.relative_to(assets)
            if (
                path.is_file()
                and not _SKIP_DIRS.intersection(rel.parts)
                and path.suffix not in _SKIP_SUFFIXES
            ):
                yield f"sandbox/_assets/{rel.as_posix()}", path


def _metadata() -> tuple[str, str]:
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
        meta = dist.read_text("METADATA")
        entry_points = dist.read_text("entry_points.txt")
    except importlib.metadata.PackageNotFoundError:
        meta = entry_points = None
    if not meta:
        meta = f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {__version__}\n"
    if not entry_points:
        entry_points = "[console_scripts]\nsandbox = sandbox.cli:main\n"
    return meta, entry_points


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _build() -> bytes:
    entries: list[tuple[str, bytes]] = [(name, path.read_bytes()) for name, path in _package_files()]
    meta, entry_points = _metadata()
    wheel = "Wheel-Version: 1.0\nGenerator: perstack-sandbox\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries += [
        (f"{_DIST_INFO}/METADATA", meta.encode()),
        (f"{_DIST_INFO}/WHEEL", wheel.encode()),
        (f"{_DIST_INFO}/entry_points.txt", entry_points.encode()),
    ]
    record = "\n".join([*(_record_line(n, d) for n, d in entries), f"{_DIST_INFO}/RECORD,,"]) + "\n"
    entries.append((f"{_DIST_INFO}/RECORD", record.encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def runtime_wheel() -> tuple[str, bytes]:
    """(file name, bytes) of a wheel of the running installation."""
    return _WHEEL_NAME, _build()


def installation_fingerprint() -> str:
    """A cheap digest of the running installation (names, sizes, mtimes): it changes whenever the wheel
    `runtime_wheel` would pack could. Stat only, no reads, so a run can afford it where it skips the render
    (a standby sandbox's key, `sandbox.docker._standby`)."""
    digest = hashlib.sha256(__version__.encode())
    for name, path in _package_files():
        stat = path.stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
