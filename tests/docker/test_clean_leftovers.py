"""`sandbox clean` against a real engine: only this tool's objects, only dead owners' unless `--all`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import typer
from typer.testing import CliRunner

from sandbox.cli.clean import clean_command
from sandbox.docker._labels import Owner

pytestmark = pytest.mark.docker

BASE = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm")


def labels(owner: str, tag: str) -> dict[str, str]:
    return {"sandbox.tool": "perstack-sandbox", "sandbox.host": socket.gethostname(), "sandbox.owner": owner,
            "sandbox.run": tag, "sandbox.deadline": str(int(time.time()) + 3600)}  # fmt: skip


@pytest.fixture
def api() -> Iterator[docker.APIClient]:
    client = docker.APIClient(version="auto")
    yield client
    client.close()


def clean(monkeypatch: pytest.MonkeyPatch, tmp: Path, *args: str) -> dict[str, list[str]]:
    app = typer.Typer()
    app.command()(clean_command)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    result = CliRunner().invoke(app, ["--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, list[str]] = json.loads(result.output)
    return data


def test_clean_removes_dead_owners_objects_and_keeps_live_ones(
    api: docker.APIClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = f"cleantest{int(time.time() * 1000)}"
    dead, live = labels("999999999:1", tag + "dead"), labels(Owner.current().token(), tag + "live")
    made: list[str] = []
    nets: list[str] = []
    try:
        for name, lab in ((f"{tag}-dead", dead), (f"{tag}-live", live)):
            nets.append(api.create_network(f"{name}_internal", internal=True, labels=lab)["Id"])
            host = api.create_host_config(network_mode=f"{name}_internal")
            created = api.create_container(BASE, command=["true"], name=f"{name}-expert-1", labels=lab,
                                           host_config=host)  # fmt: skip
            made.append(created["Id"])
        for name, lab in (("dead", dead), ("live", live)):
            d = tmp_path / f"sandbox-run-{tag}{name}-x"
            d.mkdir()
            (d / ".sandbox-owner.json").write_text(json.dumps(lab))
        (tmp_path / "not-ours").mkdir()

        report = clean(monkeypatch, tmp_path)
        assert (
            f"{tag}-dead-expert-1" in report["containers"]
            and f"{tag}-live-expert-1" not in report["containers"]
        )
        assert (
            f"{tag}-dead_internal" in report["networks"] and f"{tag}-live_internal" not in report["networks"]
        )
        assert [Path(p).name for p in report["tempDirs"]] == [f"sandbox-run-{tag}dead-x"]
        assert api.containers(all=True, filters={"label": f"sandbox.run={tag}dead"}) == []
        assert len(api.containers(all=True, filters={"label": f"sandbox.run={tag}live"})) == 1
        assert (tmp_path / "not-ours").exists() and (tmp_path / f"sandbox-run-{tag}live-x").exists()

        preview = clean(monkeypatch, tmp_path, "--all", "--dry-run")
        assert f"{tag}-live-expert-1" in preview["containers"]
        assert len(api.containers(all=True, filters={"label": f"sandbox.run={tag}live"})) == 1
    finally:
        for cid in made:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(cid, force=True)
        for nid in nets:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_network(nid)


def test_images_are_listed_for_removal_only_with_images_flag(
    api: docker.APIClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    repo = f"sandbox-expert:cleantest{int(time.time())}"
    dockerfile = f"FROM {BASE}\nLABEL sandbox.tool=perstack-sandbox\n".encode()
    list(api.build(fileobj=io.BytesIO(dockerfile), tag=repo, rm=True, pull=False, decode=True))
    try:
        assert repo not in clean(monkeypatch, tmp_path, "--dry-run")["images"]
        assert repo in clean(monkeypatch, tmp_path, "--images", "--dry-run")["images"]
        assert api.images(name=repo)  # dry run: still there
    finally:
        api.remove_image(repo, force=True)
