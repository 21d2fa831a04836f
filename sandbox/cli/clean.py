"""`sandbox clean`: remove what this tool left on the Docker engine and in the temp dir.

By default only leftovers go: containers, networks and temp dirs of runs whose owning process is gone (a
`kill -9`, a crash) or whose wall-clock deadline passed. A live run in another terminal is never touched.
`--images` also removes this tool's images and the host's skill-version cache; `--all` removes every
object of this tool, live runs included, plus the images. Everything found is labelled
`sandbox.tool=perstack-sandbox`; nothing else is ever removed.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["clean_command"]


def clean_command(
    images: Annotated[bool, typer.Option("--images", help="Also remove this tool's images.")] = False,
    everything: Annotated[
        bool,
        typer.Option(
            "--all", help="Remove every object of this tool, including live runs' containers, and the images."
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Remove leftover sandbox containers, networks and temp dirs (and, if asked, images)."""
    import os
    import sys

    from sandbox._errors import DockerError
    from sandbox.docker import TOOL_LABEL, TOOL_NAME, DockerBackend, SkillsCache, collect_leftovers

    backend = DockerBackend()
    try:
        report = collect_leftovers(backend, everything=everything, dry_run=dry_run)
        if images or everything:
            for info in backend.list_images({TOOL_LABEL: TOOL_NAME}):
                try:
                    if not dry_run:
                        backend.remove_image(info.id)
                    report.images.append(info.name)
                except DockerError as exc:
                    report.errors.append(f"image {info.name}: {exc}")
            if not dry_run:
                SkillsCache.default(os.environ).clear()
    finally:
        backend.close()
    if as_json:
        print(json.dumps({"dryRun": dry_run, **report.to_json()}, indent=2))
    else:
        verb = "would remove" if dry_run else "removed"
        for kind, names in (
            ("container", report.containers),
            ("network", report.networks),
            ("temp dir", report.temp_dirs),
            ("image", report.images),
        ):
            for name in names:
                print(f"{verb} {kind} {name}")
        if not report.total():
            print("nothing to clean")
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
    if report.errors:
        raise typer.Exit(1)
