"""The sandbox policy the user last accepted for an Expert, and what a changed perstack.toml widens.

Why: the workspace is often a git checkout that holds perstack.toml, and the Expert edits that checkout. The
masks of `sandbox.steering` keep the file itself out of the sandbox's reach, but an edit can still reach it
another way: a commit the Expert made that the user checks out, merges or pulls; a branch switch; a host
that was killed before it could undo a run's changes. A new `baseUrl`, an `allowPrivate` opt-in or a new
env name in that file would then send the key, or the internal network, to whoever wrote it, silently.

So every docker run compares its policy (what the sandbox may reach and receive: egress names, private
opt-ins, extra hosts, env names, images, env files, the CA bundle, skill packages) with the one recorded at
the last run the user accepted for the same perstack.toml and Expert. Narrower or equal: it runs and the
record follows. Wider: the run is refused with one line naming each widening, until the user accepts it on
the command line (`--accept-policy`), never by a setting in a file the Expert could have written. What the
user passes on the command line for this run (`--allow-private`, `--env`, `--base-image`, ...) is their own
explicit choice and never counts as a widening. The first run for a file is accepted (there is nothing to
compare with) and recorded.

The records live in the user's state directory (`$XDG_STATE_HOME/sandbox/accepted`, default
`~/.local/state`), outside every workspace; they hold names and hosts, never values.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox._state import state_dir
from sandbox.plan import SandboxPlan

__all__ = ["Explicit", "Policy", "PolicyStore", "widenings"]

_SETS = ("domains", "allow_private", "add_hosts", "env_names", "env_files", "packages")
_LABELS = {
    "domains": "egress",
    "allow_private": "allowPrivate",
    "add_hosts": "addHosts",
    "env_names": "env",
    "env_files": "envPath",
    "packages": "packages",
    "base_image": "baseImage",
    "node_image": "nodeImage",
    "ca_cert": "caCert",
}


@dataclass(frozen=True)
class Policy:
    """What one Expert's sandbox may reach and receive (names and hosts only, never values)."""

    domains: frozenset[str] = frozenset()
    allow_private: frozenset[str] = frozenset()
    add_hosts: frozenset[str] = frozenset()
    env_names: frozenset[str] = frozenset()
    env_files: frozenset[str] = frozenset()
    packages: frozenset[str] = frozenset()
    base_image: str = ""
    node_image: str = ""
    ca_cert: str = ""  # the bundle's path and digest: another file, or the same file changed

    @classmethod
    def of(cls, plan: SandboxPlan, *, env_files: Iterable[str], extra_env: Iterable[str] = ()) -> Policy:
        """The policy `plan` enforces, with the env files it was read from and `--env` names."""
        ca = ""
        if plan.ca_cert:
            try:
                digest = hashlib.sha256(Path(plan.ca_cert).expanduser().read_bytes()).hexdigest()[:16]
            except OSError:
                digest = "unreadable"
            ca = f"{plan.ca_cert}#{digest}"
        return cls(
            domains=frozenset(plan.allowed_domains),
            allow_private=frozenset(plan.network.allow_private),
            add_hosts=frozenset(plan.network.add_hosts),
            env_names=frozenset([*plan.env.required, *plan.env.optional, *extra_env]),
            env_files=frozenset(env_files),
            packages=frozenset(
                [*(f"npm:{p}" for p in plan.packages.npm), *(f"pypi:{p}" for p in plan.packages.pypi)]
            ),
            base_image=plan.base_image,
            node_image=plan.node_image,
            ca_cert=ca,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON object: sorted lists for the sets, strings for the rest."""
        data: dict[str, Any] = {name: sorted(getattr(self, name)) for name in _SETS}
        data.update(base_image=self.base_image, node_image=self.node_image, ca_cert=self.ca_cert)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        """Read `to_json`'s output back; unknown or malformed parts read as empty (a stricter comparison)."""

        def names(key: str) -> frozenset[str]:
            return frozenset(str(v) for v in data.get(key) or () if isinstance(v, str))

        def text(key: str) -> str:
            return str(data.get(key) or "")

        return cls(
            domains=names("domains"),
            allow_private=names("allow_private"),
            add_hosts=names("add_hosts"),
            env_names=names("env_names"),
            env_files=names("env_files"),
            packages=names("packages"),
            base_image=text("base_image"),
            node_image=text("node_image"),
            ca_cert=text("ca_cert"),
        )


@dataclass(frozen=True)
class Explicit:
    """What the command line itself chose for this run: never a widening (the user typed it)."""

    allow_private: frozenset[str] = frozenset()
    add_hosts: frozenset[str] = frozenset()
    env_names: frozenset[str] = frozenset()
    env_files: frozenset[str] = frozenset()
    base_image: bool = False
    node_image: bool = False
    ca_cert: bool = False


def widenings(old: Policy, new: Policy, explicit: Explicit | None = None) -> list[str]:
    """What `new` allows that `old` did not, as short phrases (`egress +evil.test`); empty when none."""
    explicit = explicit or Explicit()
    found: list[str] = []
    for name in _SETS:
        added = getattr(new, name) - getattr(old, name) - getattr(explicit, name, frozenset())
        found.extend(f"{_LABELS[name]} +{item}" for item in sorted(added))
    for name in ("base_image", "node_image", "ca_cert"):
        before, after = getattr(old, name), getattr(new, name)
        if after != before and after and not getattr(explicit, name):
            found.append(f"{_LABELS[name]} {before or '(default)'} -> {after}")
    return found


@dataclass
class PolicyStore:
    """The accepted policies, one small JSON file per (perstack.toml, Expert)."""

    directory: Path

    @classmethod
    def default(cls, env: Mapping[str, str]) -> PolicyStore:
        """`$XDG_STATE_HOME/sandbox/accepted` (default `~/.local/state/...`), from the process environment."""
        return cls(state_dir(env) / "accepted")

    def _file(self, source: str, expert: str) -> Path:
        digest = hashlib.sha256(f"{source}\0{expert}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    def get(self, source: str, expert: str) -> Policy | None:
        """The accepted policy; None when this file and Expert never ran (or the record is unreadable)."""
        try:
            data = json.loads(self._file(source, expert).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("policy"), dict):
            return None
        return Policy.from_json(data["policy"])

    def put(self, source: str, expert: str, policy: Policy) -> None:
        """Record `policy` as accepted (atomically; the directory is the user's only)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._file(source, expert)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        body = {"config": source, "expert": expert, "policy": policy.to_json()}
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        os.replace(tmp, path)
