"""A stand-in coding-agent CLI: prints a recorded stream, then behaves as its behaviour file says.

Used as `cursor-agent` (Cursor's CLI is in no registry) and to drive error, timeout and signal paths of
every adapter without a model. A per-test shim script execs `python fake_cli.py BEHAVIOUR.json "$@"`;
the behaviour file (JSON) says:

* `stream`: path of a recorded JSONL stream to print to stdout, line by line (`delay` seconds apart);
* `stderr`: text for stderr; `exit`: the exit code (default 0); `version`: what `--version` prints;
* `record`: path where argv, cwd, env and whether stdin is closed are written as JSON;
* `sleep`: seconds to sleep after printing (timeout tests); `grandchild`: path where the pid of a
  `sleep` grandchild (same process group) is written, to prove group kills;
* `signals`: path where a received SIGINT/SIGTERM is written (then exit 128+signal);
* `copy_usage`: a usage report copied to the path given by `--usage-output-file` (as Copilot does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    behaviour = json.loads(Path(sys.argv[1]).read_text())
    args = sys.argv[2:]
    if args[:1] in (["--version"], ["-v"]):
        print(behaviour.get("version", "1.2.3 (fake)"))
        return 0
    if args[:1] == ["--help"]:
        print(behaviour.get("help", "usage: fake [options]"))
        return 0
    if behaviour.get("record"):
        stdin_closed = sys.stdin.read() == ""
        Path(behaviour["record"]).write_text(
            json.dumps(
                {"argv": args, "cwd": os.getcwd(), "env": dict(os.environ), "stdin_empty": stdin_closed}
            )
        )
    if behaviour.get("signals"):
        target = Path(behaviour["signals"])

        def on_signal(signum: int, _frame: object) -> None:
            target.write_text(str(signum))
            sys.stdout.flush()
            os._exit(128 + signum)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    if behaviour.get("grandchild"):
        child = subprocess.Popen(["sleep", "1000"])  # inherits our process group
        Path(behaviour["grandchild"]).write_text(str(child.pid))
    if behaviour.get("stream"):
        for line in Path(behaviour["stream"]).read_text().splitlines():
            print(line, flush=True)
            time.sleep(behaviour.get("delay", 0))
    if behaviour.get("stderr"):
        print(behaviour["stderr"], file=sys.stderr, flush=True)
    if behaviour.get("copy_usage") and "--usage-output-file" in args:
        target = Path(args[args.index("--usage-output-file") + 1])
        target.write_text(Path(behaviour["copy_usage"]).read_text())
    if behaviour.get("sleep"):
        time.sleep(behaviour["sleep"])
    return int(behaviour.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main())
