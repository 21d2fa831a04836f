"""Cold build: a new Expert with one npm and one PyPI skill on a warm base, then the same Expert unchanged.

"Warm base": the base and Node images are present and the layers every Expert with a Node skill shares
(Python, Node, this project's runtime) are cached; a primer Expert (the same two skills, unpinned, like the
example) is built first, unmeasured, to make sure of that. What a new Expert then costs is its own skill
layers: `npm install -g` and `uv tool install` from the registries, plus the skill lock.

The measured Expert pins versions the primer does not spell out (`name@version`, `name==version`), so
its skill layers are not in the builder's cache; the part removes its image again afterwards (unless
`--keep-cold-image`), so the next benchmark run builds it for real as well. That it really built is
checked, not assumed: the creation times of its skill layers must fall inside this run. The second
`sandbox build` of the same Expert must build nothing (`"built": []`), which is the target.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..harness import BenchError, bench_toml, log
from ..report import Row, fmt_seconds
from ..stats import Target, evaluate, ratio
from . import Context, PartResult

__all__ = ["NPM_SKILL", "PYPI_SKILL", "TARGET", "run_cold"]

NPM_SKILL = ("@modelcontextprotocol/server-everything", "2026.8.31")
PYPI_SKILL = ("mcp-server-time", "2026.10.19")

TARGET = Target(
    "cold.unchanged_builds", "same Expert again, nothing changed: images built", "==", 0, "images"
)


def _skills(expert: str, npm: str, pypi: str) -> str:
    return (
        f'[experts."{expert}".skills."everything"]\n'
        'type = "mcpStdioSkill"\n'
        'command = "npx"\n'
        f'packageName = "{npm}"\n'
        'pick = ["get-sum", "echo"]\n'
        f'[experts."{expert}".skills."time"]\n'
        'type = "mcpStdioSkill"\n'
        'command = "uvx"\n'
        f'packageName = "{pypi}"\n'
    )


def _layer_times(client: Any, image: str) -> list[tuple[float, str]]:
    """(created epoch, instruction) of each layer of `image`, newest first (`docker history`)."""
    return [(float(h["Created"]), str(h.get("CreatedBy", ""))) for h in client.api.history(image)]


def run_cold(ctx: Context) -> PartResult:
    site = ctx.docker()
    client = site.client
    base_url = site.endpoint.base_url
    primer_dir = ctx.work / "cold-primer"
    primer_dir.mkdir(exist_ok=True)
    primer = primer_dir / "perstack.toml"
    primer.write_text(
        bench_toml(base_url, expert="primer", skills=_skills("primer", NPM_SKILL[0], PYPI_SKILL[0]))
    )
    log("cold: priming the shared layers (base, Python, Node, runtime) with an unpinned Expert")
    primed, _ = site.build(primer, "primer")

    cold_dir = ctx.work / "cold-expert"
    cold_dir.mkdir(exist_ok=True)
    config = cold_dir / "perstack.toml"
    npm, pypi = f"{NPM_SKILL[0]}@{NPM_SKILL[1]}", f"{PYPI_SKILL[0]}=={PYPI_SKILL[1]}"
    config.write_text(
        bench_toml(
            base_url,
            expert="bench-cold",
            skills=_skills("bench-cold", npm, pypi),
            description="Benchmark Expert: one npm and one PyPI skill, pinned.",
        )
    )

    # Its image tag is a content hash: if a previous run left it, remove it so this build is cold.
    tag = _expected_tag(site, config)
    if tag:
        _remove_image(client, tag)

    started = time.time()
    log(f"cold: building a new Expert with {npm} and {pypi}")
    first, first_proc = site.build(config, "bench-cold")
    tag = first["expertImage"]
    log(f"cold: built {first['built']} in {first_proc.total_s:.1f} s; building the same Expert again")
    second, second_proc = site.build(config, "bench-cold")

    layers = _layer_times(client, tag)
    skill_layers = [(t, cmd) for t, cmd in layers if "npm install" in cmd or "uv tool install" in cmd]
    cold = bool(skill_layers) and all(t >= started - 1 for t, _ in skill_layers)
    removed = False
    if not ctx.keep_cold_image:
        removed = _remove_image(client, tag)

    built_again = len(second["built"])
    verdict = evaluate(
        TARGET, float(built_again), note="`sandbox build` twice; the second run's `built` list"
    )
    result = PartResult("cold", verdicts=[verdict])
    result.data = {
        "npm": npm,
        "pypi": pypi,
        "primer": {"built": primed["built"], "expertImage": primed["expertImage"]},
        "first": {
            "wallSeconds": round(first_proc.total_s, 3),
            "buildSeconds": first["seconds"],
            "built": first["built"],
            "skills": first.get("skills"),
            "image": tag,
        },
        "second": {
            "wallSeconds": round(second_proc.total_s, 3),
            "buildSeconds": second["seconds"],
            "built": second["built"],
        },
        "reallyCold": cold,
        "skillLayers": [
            {"created": datetime.fromtimestamp(t).isoformat(timespec="seconds"), "by": cmd[:160]}
            for t, cmd in skill_layers
        ],
        "imageRemovedAfter": removed,
    }
    if "expert" not in first["built"]:
        raise BenchError(f"cold: the first build built {first['built']}, not the expert image")
    note = "" if cold else " (NOT cold: its skill layers came from the builder's cache)"
    result.rows += [
        Row(
            "cold",
            "new Expert, 1 npm + 1 PyPI skill, warm base: `sandbox build` wall time" + note,
            fmt_seconds(first_proc.total_s),
            f"same Expert again: {fmt_seconds(second_proc.total_s)}",
            ratio(first_proc.total_s, second_proc.total_s),
        ),
        Row(
            "cold",
            "same Expert again, nothing changed: images built",
            f"{built_again} ({', '.join(second['built']) or 'no build step'})",
            "",
            None,
            "0 (no build step)",
            verdict.status,
        ),
    ]
    if not cold:
        result.verdicts.append(
            evaluate(
                Target("cold.really_cold", "the cold build installed its skills (no cache hit)", "==", 1), 0.0
            )
        )
    return result


def _expected_tag(site: Any, config: Path) -> str | None:
    """The expert image tag `sandbox build` would use for `config`, without building (`sandbox render`)."""
    out = config.parent / "rendered"
    proc = site.sandbox(
        "render",
        "bench-cold",
        "--config",
        str(config),
        "--out",
        str(out),
        *site.image_args(),
        cwd=config.parent,
        timeout=120,
    )
    if proc.code != 0:
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        compose = yaml.safe_load((out / "compose.yaml").read_text())
        return str(compose["services"]["expert"]["image"])
    return None


def _remove_image(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.remove(tag, force=False, noprune=False)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        log(f"cold: could not remove {tag}: {exc}")
        return False
    return True
