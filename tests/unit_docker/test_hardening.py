"""The runtime's hardening and the skills' confinement (`sandbox._hardening`, issue #12 item 3), for real.

No Docker: real processes on this kernel, all of one unprivileged uid (the test drops to `nobody` when it
runs as root, since root's CAP_SYS_PTRACE would bypass every check). A "victim" holds a canary in memory
and in its environ; an "attacker" of the same uid tries what a tool process tried in the red-team pass:
scan /proc/<victim>/mem, read /proc/<victim>/environ, open /proc/<victim>/fd/<its output pipe>,
PTRACE_SEIZE, and prlimit-raise the victim's core limit. Every refusal is paired with the same attack on
a victim that was not hardened (or an attacker that was not confined), which must succeed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox import _hardening
from sandbox.agent._env import skill_env

ROOT = Path(_hardening.__file__).resolve().parents[1]
HARDENING = str(Path(_hardening.__file__).resolve())
AS_ROOT = os.getuid() == 0
PY = (shutil.which("python3", path="/usr/bin:/bin") if AS_ROOT else sys.executable) or sys.executable
DROP: dict[str, Any] = {"user": 65534, "group": 65534, "extra_groups": []} if AS_ROOT else {}

VICTIM = r"""
import os, resource, sys, time
sys.path.insert(0, sys.argv[1])
secret = sys.stdin.readline().strip() + ""   # in memory only, read from a pipe like the payload
if sys.argv[2] == "harden":
    from sandbox._hardening import harden_runtime
    harden_runtime()
r, w = os.pipe()  # the victim's own output pipe (a container's stdout belongs to its user, like this one)
print("ready", w, flush=True)
time.sleep(60)
"""

ATTACKER = r"""
import ctypes, json, os, re, resource, sys
pid, canary, env_canary, fd = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode(), sys.argv[4]
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except OSError as e:
        out[name] = "err " + (os.strerror(e.errno) if e.errno else str(e))
def scan():
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            a, b = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1] or b - a > 1 << 28:
                continue
            try:
                mem.seek(a)
                if canary in mem.read(b - a):
                    found = True
            except OSError:
                continue
    return "found" if found else "not found"
attempt("mem", scan)
attempt("environ", lambda: "found" if env_canary in open(f"/proc/{pid}/environ", "rb").read() else "no")
attempt("fd1", lambda: (os.close(os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY)), "opened")[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
def seize():
    if libc.ptrace(0x4206, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
    return "seized"
attempt("ptrace", seize)
def raise_core():
    resource.prlimit(pid, resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    return "raised"
attempt("prlimit", raise_core)
print(json.dumps(out))
"""


@contextmanager
def victim(hardened: bool, canary: str, env_canary: str) -> Iterator[subprocess.Popen[str]]:
    env = {"PATH": "/usr/bin:/bin", "VICTIM_TOKEN": env_canary}
    proc = subprocess.Popen(
        [PY, "-c", VICTIM, str(ROOT), "harden" if hardened else "plain"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        **DROP,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(canary[:8] + canary[8:] + "\n")
        proc.stdin.flush()
        word, fd = proc.stdout.readline().split()
        assert word == "ready"
        proc.fd = int(fd)  # type: ignore[attr-defined]
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def attack(
    proc: subprocess.Popen[str], canary: str, env_canary: str, *, confined: bool = False
) -> dict[str, str]:
    argv = [PY, "-c", ATTACKER, str(proc.pid), canary, env_canary, str(proc.fd)]  # type: ignore[attr-defined]
    if confined:  # exactly how the launcher starts a skill or tool program
        argv = [PY, "-I", "-S", HARDENING, "--", *argv]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, check=True, **DROP
    )
    result: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_hardened_runtime_is_closed_to_its_same_uid_peers() -> None:
    canary, env_canary = "canary-mem-" + os.urandom(8).hex(), "canary-env-" + os.urandom(8).hex()
    with victim(True, canary, env_canary) as proc:
        blocked = attack(proc, canary, env_canary)
    with victim(False, canary, env_canary) as proc:
        control = attack(proc, canary, env_canary)
    # Control: every method works against a process that was not hardened.
    assert control == {
        "mem": "found",
        "environ": "found",
        "fd1": "opened",
        "ptrace": "seized",
        "prlimit": "raised",
    }, control
    assert blocked["mem"].startswith("err") and blocked["environ"].startswith("err"), blocked
    assert blocked["fd1"].startswith("err") and blocked["ptrace"].startswith("err"), blocked
    # prlimit is governed by uid, not dumpability: the hard core limit of 0 is what stops the raise.
    assert blocked["prlimit"].startswith("err"), blocked


def test_harden_runtime_sets_a_hard_core_limit_of_zero_that_cannot_be_raised() -> None:
    program = (
        "import resource, sys; sys.path.insert(0, sys.argv[1]); from sandbox import _hardening as h\n"
        "before = h.is_dumpable(); h.harden_runtime()\n"
        "try:\n    resource.setrlimit(resource.RLIMIT_CORE, (0, 1)); raised = True\n"
        "except (ValueError, OSError):\n    raised = False\n"
        "print(before, h.is_dumpable(), resource.getrlimit(resource.RLIMIT_CORE), raised)"
    )
    out = subprocess.run(
        [PY, "-c", program, str(ROOT)], capture_output=True, text=True, check=True, timeout=30, **DROP
    ).stdout.split(maxsplit=2)
    assert out[0] == "True" and out[1] == "False"  # dumpable before (the control), not after
    assert out[2].strip() == "(0, 0) False"


def test_each_confined_program_is_closed_to_its_confined_siblings() -> None:
    """A skill's environ (its requiredEnv values) from another skill or a tool program: both are started
    through the launcher, each in its own domain."""
    assert _hardening.landlock_abi() >= 1, "this kernel has no Landlock: sibling skills can read each other"
    canary, env_canary = "canary-mem-" + os.urandom(8).hex(), "canary-env-" + os.urandom(8).hex()
    with victim(False, canary, env_canary) as target:  # a skill: dumpable again after its execve
        confined = attack(target, canary, env_canary, confined=True)
        control = attack(target, canary, env_canary, confined=False)
    assert control["environ"] == "found" and control["mem"] == "found" and control["fd1"] == "opened"
    assert confined["environ"].startswith("err") and confined["mem"].startswith("err"), confined
    assert confined["fd1"].startswith("err") and confined["ptrace"].startswith("err"), confined


def test_confined_command_goes_through_the_launcher_only_where_it_exists(tmp_path: Path) -> None:
    assert _hardening.confined_command("node", ["x"], launcher=str(tmp_path / "none")) == ("node", ["x"])
    launcher = tmp_path / "sandbox-confine"
    launcher.write_text("")
    program, args = _hardening.confined_command("node", ["x"], launcher=str(launcher))
    assert program == str(launcher) and args == ["-I", "-S", HARDENING, "--", "node", "x"]


def test_the_launcher_reports_a_missing_program() -> None:
    done = subprocess.run(
        [PY, "-I", "-S", HARDENING, "--", "no-such-program-xyz"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 127 and "cannot run no-such-program-xyz" in done.stderr


def test_each_skill_gets_only_its_own_required_values() -> None:
    """The runtime's env map holds every secret; a skill's process env is the safe set plus its own."""
    source = {
        "PATH": "/usr/bin",
        "HOME": "/h",
        "ANTHROPIC_API_KEY": "sk-provider",
        "A_TOKEN": "a-secret",
        "B_TOKEN": "b-secret",
        "UNRELATED": "u",
    }
    a = skill_env("a", source, ["A_TOKEN"])
    b = skill_env("b", source, ["B_TOKEN"])
    assert a == {"PATH": "/usr/bin", "HOME": "/h", "A_TOKEN": "a-secret"}
    assert b == {"PATH": "/usr/bin", "HOME": "/h", "B_TOKEN": "b-secret"}
    assert skill_env("c", source, []) == {"PATH": "/usr/bin", "HOME": "/h"}  # control: none declared
