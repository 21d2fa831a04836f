"""The files that steer the host, kept out of the sandbox's reach when they lie inside its workspace.

Why: `--workspace` defaults to the working directory, which is where perstack.toml and `.env`/`.env.local`
are read from. A red-team run read the key from `/workspace/.env`, and wrote `DOCKER_HOST` to `.env.local`
and a new `baseUrl` to perstack.toml, which the host read on the next run. Config and env files inside the
workspace are a secret store and a persistence channel across runs at once.

Three layers, each for what the one before cannot cover:

1. *Masks.* Every steering file that exists inside the workspace is covered, in the container, by an empty
   read-only file (a bind mount); every steering directory (the job store, this tool's cache, the Docker
   client's config) by an empty read-only tmpfs. The Expert can neither read nor change them; a mount point
   cannot be unlinked or renamed (EBUSY).
2. *A snapshot.* A path that does not exist yet cannot be masked without creating it on the host, and a file
   in a subdirectory could be swapped by renaming that directory. So every steering path inside the
   workspace is recorded before the run (its bytes, or that it is absent) and checked after it: whatever the
   run created or changed is moved to `perstack/quarantine/<run>/` (hidden from every sandbox like the job
   store) and the original is put back. Nothing is lost and nothing the Expert wrote is read by the host.
3. *The accepted policy* (`sandbox.accepted`): a perstack.toml that widens the sandbox compared with the last
   run the user accepted is refused until accepted on the command line, for edits that reach the file some
   other way (a git checkout the Expert committed to, a host killed before step 2).

A workspace that holds the user's home directory (shell start-up files, `~/.ssh`, `~/.docker`) cannot be
protected file by file and is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sandbox._errors import UserError

__all__ = [
    "Change",
    "Snapshot",
    "SteeringPaths",
    "check_workspace",
    "container_path",
    "mask_targets",
    "state_digest",
    "steering_paths",
]

CONFIG_FILE_NAME = "perstack.toml"
_MAX_KEPT_BYTES = 4 * 1024 * 1024  # steering files are small; a bigger one is compared by size and mtime only
CONTAINER_WORKSPACE = "/workspace"


@dataclass(frozen=True)
class SteeringPaths:
    """Host paths whose content the host reads to decide how the next run is set up.

    `files`: perstack.toml (and every place discovery would look for one between the working directory and
    the file it found), the env files, `.env*` next to them, the CA bundle the config names. `dirs`: the job
    store, this tool's cache (standby records, skill versions), the Docker client's config directory.
    Nothing here needs to exist.
    """

    files: tuple[Path, ...] = ()
    dirs: tuple[Path, ...] = ()

    def inside(self, workspace: Path) -> SteeringPaths:
        """Only the paths inside `workspace` (the only ones the sandbox can reach)."""
        ws = workspace.resolve()
        return SteeringPaths(
            files=tuple(p for p in self.files if _within(p, ws) or _within(_resolved(p), ws)),
            dirs=tuple(p for p in self.dirs if _within(_resolved(p), ws)),
        )


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _within(path: Path, root: Path) -> bool:
    try:
        path.absolute().relative_to(root)
    except ValueError:
        return False
    return True


def _dotenv_files(directory: Path) -> list[Path]:
    """`.env` and every `.env.*` regular file in `directory` (they often hold keys for other stages)."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if p.name == ".env" or p.name.startswith(".env."))


def steering_paths(
    *,
    cwd: Path,
    config_file: Path | None,
    env_files: Sequence[str],
    ca_cert: str | None,
    jobs_dir: Path,
    env: Mapping[str, str],
) -> SteeringPaths:
    """Every path that steers this host's next run from `cwd` (see `SteeringPaths`).

    `config_file`: the local perstack.toml read (None for a remote one). `env_files`: the env file names in
    effect (`--env-path`, else `envPath`, else `.env`/`.env.local`), relative ones against `cwd`.
    """
    cwd = cwd.absolute()
    files: list[Path] = []
    # Discovery walks up from cwd: a perstack.toml created anywhere on that walk below the file found (or
    # anywhere, when none was found) would be read first next time.
    stop = config_file.parent.absolute() if config_file is not None else None
    for directory in (cwd, *cwd.parents):
        files.append(directory / CONFIG_FILE_NAME)
        if stop is not None and directory == stop:
            break
    if config_file is not None:
        files.append(config_file.absolute())
    for entry in env_files:
        path = Path(entry).expanduser()
        files.append(path if path.is_absolute() else cwd / path)
    for directory in {cwd, *([config_file.parent.absolute()] if config_file is not None else [])}:
        files.extend(_dotenv_files(directory))
    if ca_cert:
        files.append(Path(ca_cert).expanduser().absolute())
    home = Path(env.get("HOME") or Path.home())
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
    dirs = [
        jobs_dir.absolute().parent,  # `perstack/`: the job store and the quarantine
        cache / "sandbox",
        Path(env.get("DOCKER_CONFIG") or home / ".docker"),
    ]
    return SteeringPaths(
        files=tuple(dict.fromkeys(map(_normal, files))), dirs=tuple(dict.fromkeys(map(_normal, dirs)))
    )


def _normal(path: Path) -> Path:
    """Absolute, with `.` and `..` taken out lexically (`_resolved` follows symlinks where that matters)."""
    return Path(os.path.normpath(path.absolute()))


def check_workspace(workspace: Path, env: Mapping[str, str]) -> None:
    """Refuse a workspace that contains the user's home directory (or is it): one line saying why."""
    home = Path(env.get("HOME") or Path.home())
    ws, home_real = _resolved(workspace), _resolved(home)
    if home_real == ws or _within(home_real, ws):
        raise UserError(
            f"--workspace {workspace}: it contains your home directory ({home}), whose shell start-up files, "
            "~/.ssh and ~/.docker steer this machine; the Expert could change what runs next. "
            "Use a project directory (cd into it, or pass --workspace DIR)"
        )


def container_path(workspace: Path, host_path: Path) -> str:
    """`host_path` (inside `workspace`) as the Expert sees it under /workspace."""
    rel = host_path.absolute().relative_to(workspace.resolve())
    return f"{CONTAINER_WORKSPACE}/{rel.as_posix()}" if rel.parts else CONTAINER_WORKSPACE


def mask_targets(workspace: Path, steering: SteeringPaths) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(directories to cover with an empty tmpfs, files to cover with an empty file), as container paths.

    Only what exists is masked (a mount point that does not exist would be created on the host, as root):
    the caller creates the job store first. A symlink is masked at its target when that lies inside the
    workspace; the link itself is in the snapshot.
    """
    ws = workspace.resolve()
    inside = steering.inside(ws)
    dirs: list[str] = []
    for directory in inside.dirs:
        real = _resolved(directory)
        if real.is_dir() and real.relative_to(ws).parts:
            dirs.append(container_path(ws, real))
    files: list[str] = []
    for path in inside.files:
        real = _resolved(path)
        if not _within(real, ws) or not real.is_file():
            continue
        target = container_path(ws, real)
        if any(target == d or target.startswith(d + "/") for d in dirs):
            continue
        files.append(target)
    return tuple(sorted(set(dirs))), tuple(sorted(set(files)))


@dataclass(frozen=True)
class _State:
    kind: str  # "absent", "file", "link", "dir", "other"
    data: bytes | None = None  # a regular file's bytes (None when too big)
    size: int = 0
    mtime_ns: int = 0
    mode: int = 0
    target: str = ""  # a symlink's target


def _state(path: Path) -> _State:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return _State("absent")
    except OSError:
        return _State("other")
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            return _State("link", target=os.readlink(path))
        return _State("link")
    if stat.S_ISDIR(st.st_mode):
        return _State("dir")
    if not stat.S_ISREG(st.st_mode):
        return _State("other", mode=st.st_mode)
    data = None
    if st.st_size <= _MAX_KEPT_BYTES:
        with contextlib.suppress(OSError):
            data = path.read_bytes()
    return _State("file", data=data, size=st.st_size, mtime_ns=st.st_mtime_ns, mode=stat.S_IMODE(st.st_mode))


def state_digest(path: Path) -> str:
    """What `path` holds, as a short comparable string (a hash, never content): for records that outlive
    the process (`sandbox.docker._steering_guard`)."""
    return _digest_of(_state(path))


def _digest_of(st: _State) -> str:
    if st.kind == "file":
        if st.data is not None:
            return "file:" + hashlib.sha256(st.data).hexdigest()
        return f"file:{st.size}:{st.mtime_ns}"
    if st.kind == "link":
        return "link:" + hashlib.sha256(st.target.encode()).hexdigest()
    return st.kind


def _same(a: _State, b: _State) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "file":
        if a.data is not None and b.data is not None:
            return a.data == b.data
        return (a.size, a.mtime_ns) == (b.size, b.mtime_ns)
    return a.target == b.target


@dataclass(frozen=True)
class Change:
    """One steering path the run changed, and what the host did about it."""

    path: Path
    what: str  # "created", "changed", "removed"
    kept_at: Path | None  # where the run's version now is (None when the run removed the file)
    restored: bool  # the original is back in place

    def describe(self) -> str:
        """One line for stderr."""
        text = f"sandbox: the run {self.what} {self.path}, a file the host reads to set up runs"
        if self.kept_at is not None:
            text += f"; the run's version is kept at {self.kept_at}"
        if self.restored:
            text += "; the original is restored"
        elif self.what == "created":
            text += "; it was moved away, so no later run reads it"
        return text


@dataclass
class Snapshot:
    """What each steering path inside the workspace held before the run (`take`), checked after (`settle`)."""

    workspace: Path
    states: dict[Path, _State] = field(default_factory=dict)

    @classmethod
    def take(cls, workspace: Path, steering: SteeringPaths) -> Snapshot:
        """Record the steering files inside `workspace` as they are now."""
        inside = steering.inside(workspace)
        paths: Iterable[Path] = dict.fromkeys([*inside.files, *(_resolved(p) for p in inside.files)])
        ws = workspace.resolve()
        return cls(workspace=ws, states={p: _state(p) for p in paths if _within(p, ws)})

    def digests(self) -> dict[str, str]:
        """`state_digest` of each recorded path as it was when taken."""
        return {str(path): _digest_of(st) for path, st in self.states.items()}

    def settle(self, quarantine: Path) -> list[Change]:
        """Undo what the run did to the recorded paths; the run's versions go under `quarantine`.

        Never raises: a path that cannot be put back is still reported (with `restored=False`).
        """
        changes: list[Change] = []
        for path, before in self.states.items():
            after = _state(path)
            if _same(before, after):
                continue
            what = (
                "created" if before.kind == "absent" else ("removed" if after.kind == "absent" else "changed")
            )
            kept: Path | None = None
            if after.kind != "absent":
                kept = quarantine / path.relative_to(self.workspace)
                try:
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(path), str(kept))
                except OSError:
                    kept = None
            restored = before.kind == "absent" and kept is not None
            if before.kind == "file" and before.data is not None:
                restored = _restore(path, before)
            elif before.kind == "link" and before.target:
                with contextlib.suppress(OSError):
                    path.symlink_to(before.target)
                    restored = True
            changes.append(
                Change(path=path, what=what, kept_at=kept, restored=restored and before.kind != "absent")
            )
        return changes


def _restore(path: Path, before: _State) -> bool:
    assert before.data is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.sandbox-restore")
        tmp.write_bytes(before.data)
        tmp.chmod(before.mode or 0o600)
        os.replace(tmp, path)
        os.utime(path, ns=(before.mtime_ns, before.mtime_ns))
    except OSError:
        return False
    return True
