"""Process hardening inside the sandbox: what keeps one process's secrets out of its same-uid neighbours.

Every process in the Expert's container runs as the same user without capabilities: the runtime (which
holds the provider key, every skill's `requiredEnv` value and the event-signing key), each skill (holding
its own `requiredEnv` values) and every program the `exec` tool starts (the model's code). Same uid means
the kernel's default answer to "may A read B's memory?" is yes: `/proc/B/mem`, `/proc/B/environ`,
`/proc/B/fd/*`, `ptrace`, and a core dump B leaves when A raises its core limit and crashes it. Two
mechanisms, both unprivileged and both standard library (ctypes on libc):

* `harden_runtime()`, first thing in the container entry (before a secret is read from stdin, standby
  included): `prctl(PR_SET_DUMPABLE, 0)` makes the kernel refuse every ptrace-mode access by another
  process without CAP_SYS_PTRACE (mem, environ, fd/, maps, ptrace itself), and no core is ever written
  for it; `setrlimit(RLIMIT_CORE, (0, 0))` on top, so neither it nor anything it starts can dump a core
  (the container also gets a hard core limit of 0 from the engine: `ulimits` in compose.yaml). `prlimit`
  on another process is NOT governed by dumpability (only by uid); what stops a peer from raising the
  runtime's core limit is the hard limit 0, which only CAP_SYS_RESOURCE could raise.
* `confined_command()`: a skill or `exec` program is started through a launcher that puts it in its own
  Landlock domain before it runs. Landlock (Linux >= 5.13, unprivileged) denies a process in a domain
  every ptrace-mode access to a process outside that domain or its nested ones. Each child gets a fresh
  domain, so siblings cannot read each other's environ (a skill's `requiredEnv` values) or memory, and
  none of them can reach the runtime or the container's init (PID 1, which holds the container's stdout).
  A process is dumpable again after `execve`, which is why dumpability alone cannot protect a skill; the
  domain survives `execve`. The launcher is an execute-only copy of the interpreter
  (`/opt/sandbox/bin/sandbox-confine`, mode 0111, made by the Dockerfile): executing a file the user
  cannot read makes the new process non-dumpable from its first instruction (the kernel's
  `would_dump`), so the secret values in the launcher's own environ are never exposed before it has
  entered its domain and exec'd the skill. Outside an image built with the launcher (a local, unsandboxed
  run) commands are started as they are.

The Landlock ruleset handles one filesystem right nobody here has (`MAKE_BLOCK`, creating block device
nodes, which needs CAP_MKNOD anyway) and grants it nowhere: a domain needs at least one handled right, and
this one changes no file access. Without Landlock (an older kernel, or the LSM disabled) the launcher still
runs the command, and the sibling-environ residual of docs/security.md §4 applies; the audit reports it.

Standard library only: the audit's probe program imports this module inside the Expert's container to put
its stand-in runtime through the very same function.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

__all__ = [
    "LAUNCHER",
    "confine_self",
    "confined_command",
    "harden_runtime",
    "is_dumpable",
    "landlock_abi",
]

LAUNCHER = "/opt/sandbox/bin/sandbox-confine"

_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
# Landlock's syscall numbers are the same on every architecture (added after the tables were unified).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(rc: int, what: str) -> None:
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def harden_runtime() -> None:
    """Make this process non-dumpable and unable to dump a core (see the module docstring).

    Raises OSError if the kernel refuses: the caller holds secrets and must not go on unprotected.
    """
    libc = _libc()
    _check(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE, 0)")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def is_dumpable() -> bool:
    """This process's dumpable flag (what `/proc/<pid>/mem` and `ptrace` access by peers depends on)."""
    return bool(_libc().prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is unavailable (old kernel, LSM off, seccomp)."""
    rc = _libc().syscall(
        _SYS_LANDLOCK_CREATE_RULESET,
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(int(rc), 0)


def confine_self() -> None:
    """Enter a new Landlock domain of this process's own (inherited by its children, kept over execve).

    Raises OSError when Landlock is unavailable or refuses.
    """
    libc = _libc()
    attr = ctypes.c_uint64(_LANDLOCK_ACCESS_FS_MAKE_BLOCK)  # struct landlock_ruleset_attr, ABI 1 size
    fd = libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0)
    )
    _check(fd, "landlock_create_ruleset")
    try:
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(
            libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(fd)


def confined_command(command: str, args: list[str], launcher: str = LAUNCHER) -> tuple[str, list[str]]:
    """`(command, args)` to start a skill or tool program in a Landlock domain of its own.

    Unchanged when this image has no launcher (a local run, outside the sandbox).
    """
    if not os.path.isfile(launcher):
        return command, list(args)
    return launcher, ["-I", "-S", os.path.realpath(__file__), "--", command, *args]


def _launch(argv: list[str]) -> int:
    """The launcher: confine, then become `argv` (looked up on PATH). Returns only on failure."""
    if not argv:
        print("sandbox-confine: no command", file=sys.stderr)
        return 2
    try:
        confine_self()
    except OSError as exc:  # no Landlock here: run unconfined (docs/security.md §4 residual)
        print(f"sandbox-confine: not confined ({exc.strerror or exc})", file=sys.stderr, flush=True)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the launcher becomes the command
    except OSError as exc:
        print(f"sandbox-confine: cannot run {argv[0]}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 127
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    rest = sys.argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    sys.exit(_launch(rest))
