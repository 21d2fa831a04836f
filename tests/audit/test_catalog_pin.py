"""The catalogue's behaviour, pinned per probe: its ids, order, specs, texts and judgements.

`fixtures/catalog-pin.json` holds, for the recorded fixture site and for the same site without an Expert
allowlist, one row per probe in report order: the probe id, its spec ids per batch, and a digest of
everything else it is (title, expectation, control, every spec's parameters, and the full outcome it
reaches on the recorded evidence, on no evidence at all, and under each mutation of `test_catalog`). A
refactor of the catalogue must leave this file unchanged; a deliberate change to a probe shows up as a
changed row for exactly that probe. Rewrite it after such a change with

    python -m tests.audit.test_catalog_pin
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import sys
from typing import Any

from sandbox.audit._catalog import Evidence, Site, build_catalog, judge_all
from tests.audit.test_catalog import FIXTURE, MUTATIONS, load

PIN = FIXTURE.parent / "catalog-pin.json"

# The forged-event lines (`secrets.forged-events`) carry a fresh event id and timestamp on every build.
_VOLATILE = (
    (re.compile(r'\\"id\\":\\"[a-z0-9]{24}\\"'), "<id>"),
    (re.compile(r'\\"timestamp\\":\d+'), "<timestamp>"),
)


def _sites() -> dict[str, Site]:
    site, _ = load()
    return {"recorded": site, "no-plan": dataclasses.replace(site, plan_domains=(), plan_opt_ins=())}


def _canonical(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    for pattern, stand_in in _VOLATILE:
        text = pattern.sub(stand_in, text)
    return text


def pin() -> dict[str, list[dict[str, Any]]]:
    """The pin as it is computed from the catalogue now."""
    site0, recorded = load()
    evidences: list[Evidence] = [recorded, Evidence()]
    for _, mutate, _, _ in MUTATIONS:
        ev, s = copy.deepcopy(recorded), copy.deepcopy(site0)
        mutate(s, ev)
        evidences.append(ev)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, site in _sites().items():
        catalog = build_catalog(site)
        judged = [[o.to_json() for o in judge_all(catalog, ev)] for ev in evidences]
        rows = []
        for i, p in enumerate(catalog):
            whole = [p.title, p.expected, p.control, list(p.inside), list(p.outside), [j[i] for j in judged]]
            rows.append(
                {
                    "id": p.id,
                    "inside": [s["id"] for s in p.inside],
                    "outside": [s["id"] for s in p.outside],
                    "digest": hashlib.sha256(_canonical(whole).encode()).hexdigest()[:16],
                }
            )
        out[name] = rows
    return out


def test_the_catalogue_matches_its_pin() -> None:
    want = json.loads(PIN.read_text())
    got = pin()
    assert got.keys() == want.keys()
    for name in want:
        assert [r["id"] for r in got[name]] == [r["id"] for r in want[name]], name
        changed = [g["id"] for g, w in zip(got[name], want[name], strict=True) if g != w]
        assert not changed, (name, changed)


def _write(data: dict[str, list[dict[str, Any]]]) -> str:
    """One probe a line, so that a changed probe is a one-line diff."""
    blocks = []
    for name, rows in data.items():
        lines = ",\n".join("    " + json.dumps(r) for r in rows)
        blocks.append(f"  {json.dumps(name)}: [\n{lines}\n  ]")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


if __name__ == "__main__":
    PIN.write_text(_write(pin()))
    print(f"wrote {PIN}", file=sys.stderr)
