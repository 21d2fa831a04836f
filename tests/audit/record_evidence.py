"""Re-record tests/audit/fixtures/evidence-all-pass.json from a real audit of examples/time-keeper.

    python -m tests.audit.record_evidence

Needed when a probe is added or renamed (tests/audit/test_catalog.py::test_the_fixture_covers_every_spec
says so). The recording must come from a machine where every probe passes: the replayed tests assume it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sandbox.audit import AuditSettings, UserLayout, run_audit
from sandbox.config import load_config
from sandbox.docker._testkit import llm_tls
from sandbox.plan import PlanInputs, compute_plan
from sandbox.steering import steering_paths

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "evidence-all-pass.json"


def main() -> int:
    loaded = load_config(ROOT / "examples" / "time-keeper" / "perstack.toml")
    env = dict(os.environ)
    plan = compute_plan(
        loaded.config,
        PlanInputs(
            expert_key="time-keeper",
            runtime="docker",
            env=env,
            base_image=env.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm"),
            node_image=env.get("SANDBOX_TEST_NODE_IMAGE", "sandbox-node:22"),
            ca_cert=str(llm_tls().bundle),
        ),
    )
    # The example's own layout (perstack.toml in the workspace, `.env`/`.env.local` where the demo keeps the
    # key), as `sandbox run` from that directory sees it, for the steering probes.
    example = ROOT / "examples" / "time-keeper"
    steering = steering_paths(
        cwd=example,
        config_file=loaded.path,
        env_files=[".env", ".env.local"],
        ca_cert=plan.ca_cert,
        jobs_dir=example / "perstack" / "jobs",
        env=env,
    )
    layout = UserLayout(
        workspace=example, steering=steering, env_files=(".env", ".env.local"), config_source=loaded.source
    )
    report = run_audit(plan, loaded.config, env, settings=AuditSettings(evidence_path=FIXTURE, layout=layout))
    bad = [o.id for o in report.outcomes if o.verdict != "pass"]
    if bad:
        print(
            f"not all probes passed ({', '.join(bad)}); the fixture must come from an all-pass run",
            file=sys.stderr,
        )
        return 1
    print(f"recorded {FIXTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
