"""compose.yaml -> engine specs: the rendered compose file stays the one description of the sandbox.

Why translate instead of calling `docker compose`: speed (see `_sdk.py`) and fewer moving parts at run time.
Why translate *compose.yaml* instead of building specs from the plan again: so that what a reviewer reads in
compose.yaml (and what `docker compose -f compose.yaml up` would run) is exactly what runs. To keep that true
the translation is strict: every key the template may emit is handled, and any other key is an error rather
than silently dropped (a dropped `cap_drop` would be a hole). tests/docker/test_executor_compose_parity.py
checks the result against `docker compose config` on every security-relevant field.

Compose semantics reproduced here:

* `$$` is a literal `$` (the renderer escapes every `$`); a lone `$` would be interpolation from the invoking
  shell, which the sandbox never wants, so it is refused.
* Relative bind sources are relative to the compose file's directory.
* Network engine names are `<project>_<key>` (or `name:`); container names `<project>-<service>-1`.
* `cpus` becomes NanoCPUs; `tmpfs` entries `path:options` become a mount map.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox._errors import RenderError

from ._backend import ContainerSpec, Mount, NetworkAttachment, NetworkSpec

__all__ = ["ComposeProject", "load_compose", "parse_compose", "unescape"]

_LONE_DOLLAR = re.compile(r"\$(?!\$)")

_SERVICE_KEYS = frozenset(
    {
        "image",
        "build",
        "user",
        "read_only",
        "cap_drop",
        "cap_add",
        "security_opt",
        "tmpfs",
        "volumes",
        "environment",
        "dns",
        "dns_opt",
        "mem_limit",
        "memswap_limit",
        "cpus",
        "pids_limit",
        "labels",
        "networks",
        "extra_hosts",
        "stdin_open",
        "init",
        "depends_on",
        "command",
        "entrypoint",
        "working_dir",
        "ulimits",
    }
)
_NETWORK_KEYS = frozenset(
    {"internal", "enable_ipv6", "ipam", "labels", "name", "driver", "driver_opts", "external"}
)


@dataclass(frozen=True)
class ComposeProject:
    """A parsed compose file: the project name, its networks and services (by compose key)."""

    name: str
    networks: Mapping[str, NetworkSpec]
    services: Mapping[str, ContainerSpec]
    base_dir: Path


def unescape(value: str, where: str) -> str:
    """Compose's `$$` -> `$`; a lone `$` (interpolation) is refused."""
    if _LONE_DOLLAR.search(value.replace("$$", "")):
        raise RenderError(f"compose.yaml {where}: '$' interpolation is not allowed: {value!r}")
    return value.replace("$$", "$")


def _str(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RenderError(f"compose.yaml {where}: expected a string, got {type(value).__name__}")
    return unescape(str(value), where)


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (_str(value, where),)
    if not isinstance(value, list):
        raise RenderError(f"compose.yaml {where}: expected a list")
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def _mapping(value: Any, where: str) -> dict[str, str]:
    """A compose mapping or `KEY=VALUE` list; a key without value (take it from the shell) is refused."""
    if value is None:
        return {}
    out: dict[str, str] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            text = _str(item, f"{where}[{i}]")
            key, sep, val = text.partition("=")
            if not sep:
                raise RenderError(f"compose.yaml {where}: {key!r} has no value (host passthrough is refused)")
            out[key] = val
        return out
    if not isinstance(value, dict):
        raise RenderError(f"compose.yaml {where}: expected a mapping")
    for key, val in value.items():
        if val is None:
            raise RenderError(f"compose.yaml {where}.{key}: no value (host passthrough is refused)")
        out[_str(key, where)] = _str(val, f"{where}.{key}")
    return out


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RenderError(f"compose.yaml {where}: expected true/false")
    return value


def _network(key: str, body: Any, project: str) -> NetworkSpec:
    body = body or {}
    if not isinstance(body, dict):
        raise RenderError(f"compose.yaml networks.{key}: expected a mapping")
    unknown = set(body) - _NETWORK_KEYS
    if unknown:
        raise RenderError(f"compose.yaml networks.{key}: unsupported keys {sorted(unknown)}")
    if _bool(body.get("external", False), f"networks.{key}.external"):
        if set(body) != {"external", "name"}:
            raise RenderError(f"compose.yaml networks.{key}: an external network takes `name` only")
        return NetworkSpec(name=_str(body["name"], f"networks.{key}.name"), external=True)
    if body.get("driver", "bridge") != "bridge":
        raise RenderError(f"compose.yaml networks.{key}: only the bridge driver is supported")
    subnet = ip_range = None
    configs = ((body.get("ipam") or {}).get("config")) or []
    if len(configs) > 1:
        raise RenderError(f"compose.yaml networks.{key}: one ipam config at most")
    if configs:
        subnet = _str(configs[0]["subnet"], f"networks.{key}.ipam.config[0].subnet")
        if "ip_range" in configs[0]:
            ip_range = _str(configs[0]["ip_range"], f"networks.{key}.ipam.config[0].ip_range")
    name = _str(body["name"], f"networks.{key}.name") if "name" in body else f"{project}_{key}"
    return NetworkSpec(
        name=name,
        internal=_bool(body.get("internal", False), f"networks.{key}.internal"),
        subnet=subnet,
        ip_range=ip_range,
        enable_ipv6=_bool(body.get("enable_ipv6", False), f"networks.{key}.enable_ipv6"),
        labels=_mapping(body.get("labels"), f"networks.{key}.labels"),
        options=_mapping(body.get("driver_opts"), f"networks.{key}.driver_opts"),
    )


def _volumes(value: Any, where: str, base_dir: Path) -> tuple[Mount, ...]:
    mounts = []
    for i, vol in enumerate(value or []):
        here = f"{where}[{i}]"
        if not isinstance(vol, dict) or vol.get("type") != "bind":
            raise RenderError(f"compose.yaml {here}: only long-syntax bind mounts are supported")
        unknown = set(vol) - {"type", "source", "target", "read_only"}
        if unknown:
            raise RenderError(f"compose.yaml {here}: unsupported keys {sorted(unknown)}")
        source = Path(_str(vol["source"], f"{here}.source"))
        if not source.is_absolute():
            source = (base_dir / source).resolve()
        mounts.append(
            Mount(
                source=str(source),
                target=_str(vol["target"], f"{here}.target"),
                read_only=_bool(vol.get("read_only", False), f"{here}.read_only"),
            )
        )
    return tuple(mounts)


def _attachments(
    value: Any, where: str, networks: Mapping[str, NetworkSpec]
) -> tuple[NetworkAttachment, ...]:
    items: dict[str, Any]
    if isinstance(value, list):
        items = {str(k): {} for k in value}
    elif isinstance(value, dict):
        items = value
    else:
        raise RenderError(f"compose.yaml {where}: expected a list or mapping")
    out = []
    for key, value_body in items.items():
        if key not in networks:
            raise RenderError(f"compose.yaml {where}: unknown network {key!r}")
        body = value_body or {}
        unknown = set(body) - {"ipv4_address", "aliases"}
        if unknown:
            raise RenderError(f"compose.yaml {where}.{key}: unsupported keys {sorted(unknown)}")
        ip = _str(body["ipv4_address"], f"{where}.{key}.ipv4_address") if "ipv4_address" in body else None
        out.append(
            NetworkAttachment(
                network=networks[key].name,
                ipv4_address=ip,
                aliases=_strs(body.get("aliases"), f"{where}.{key}.aliases"),
            )
        )
    return tuple(out)


def _tmpfs(value: Any, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, entry in enumerate(_strs(value, where)):
        path, _, options = entry.partition(":")
        if not path.startswith("/"):
            raise RenderError(f"compose.yaml {where}[{i}]: tmpfs path must be absolute")
        out[path] = options
    return out


def _ulimits(value: Any, where: str) -> dict[str, tuple[int, int]]:
    """Compose `ulimits`: `name: N` (soft = hard) or `name: {soft: N, hard: M}`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError(f"compose.yaml {where}: expected a mapping")
    out: dict[str, tuple[int, int]] = {}
    for name, limit in value.items():
        if isinstance(limit, dict) and set(limit) == {"soft", "hard"}:
            soft, hard = limit["soft"], limit["hard"]
        else:
            soft = hard = limit
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (soft, hard)):
            raise RenderError(f"compose.yaml {where}.{name}: expected a number >= 0 or {{soft, hard}}")
        out[str(name)] = (soft, hard)
    return out


def _service(
    key: str, body: Any, project: str, networks: Mapping[str, NetworkSpec], base_dir: Path
) -> ContainerSpec:
    where = f"services.{key}"
    if not isinstance(body, dict):
        raise RenderError(f"compose.yaml {where}: expected a mapping")
    unknown = set(body) - _SERVICE_KEYS
    if unknown:
        raise RenderError(f"compose.yaml {where}: unsupported keys {sorted(unknown)}")
    cpus = body.get("cpus")
    nano = None
    if cpus is not None:
        nano = round(float(_str(cpus, f"{where}.cpus")) * 1e9)
    depends = body.get("depends_on") or []
    pids = body.get("pids_limit")
    return ContainerSpec(
        name=f"{project}-{key}-1",
        service=key,
        image=_str(body["image"], f"{where}.image"),
        command=_strs(body["command"], f"{where}.command") if "command" in body else None,
        entrypoint=_strs(body["entrypoint"], f"{where}.entrypoint") if "entrypoint" in body else None,
        user=_str(body["user"], f"{where}.user") if "user" in body else None,
        working_dir=_str(body["working_dir"], f"{where}.working_dir") if "working_dir" in body else None,
        environment=_mapping(body.get("environment"), f"{where}.environment"),
        labels=_mapping(body.get("labels"), f"{where}.labels"),
        read_only=_bool(body.get("read_only", False), f"{where}.read_only"),
        cap_drop=_strs(body.get("cap_drop"), f"{where}.cap_drop"),
        cap_add=_strs(body.get("cap_add"), f"{where}.cap_add"),
        security_opt=_strs(body.get("security_opt"), f"{where}.security_opt"),
        tmpfs=_tmpfs(body.get("tmpfs"), f"{where}.tmpfs"),
        mounts=_volumes(body.get("volumes"), f"{where}.volumes", base_dir),
        dns=_strs(body.get("dns"), f"{where}.dns"),
        dns_opt=_strs(body.get("dns_opt"), f"{where}.dns_opt"),
        extra_hosts=_strs(body.get("extra_hosts"), f"{where}.extra_hosts"),
        mem_limit=_str(body["mem_limit"], f"{where}.mem_limit") if "mem_limit" in body else None,
        memswap_limit=(
            _str(body["memswap_limit"], f"{where}.memswap_limit") if "memswap_limit" in body else None
        ),
        nano_cpus=nano,
        pids_limit=int(pids) if pids is not None else None,
        ulimits=_ulimits(body.get("ulimits"), f"{where}.ulimits"),
        init=_bool(body.get("init", False), f"{where}.init"),
        stdin_open=_bool(body.get("stdin_open", False), f"{where}.stdin_open"),
        networks=_attachments(body.get("networks") or {}, f"{where}.networks", networks),
        depends_on=tuple(str(d) for d in depends),
    )


def parse_compose(text: str, base_dir: Path) -> ComposeProject:
    """Translate compose.yaml text; relative paths resolve against `base_dir`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RenderError(f"compose.yaml is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RenderError("compose.yaml: expected a mapping at the top")
    unknown = set(data) - {"name", "services", "networks"}
    if unknown:
        raise RenderError(f"compose.yaml: unsupported top-level keys {sorted(unknown)}")
    project = _str(data["name"], "name")
    networks = {str(k): _network(str(k), v, project) for k, v in (data.get("networks") or {}).items()}
    services = {
        str(k): _service(str(k), v, project, networks, base_dir)
        for k, v in (data.get("services") or {}).items()
    }
    return ComposeProject(name=project, networks=networks, services=services, base_dir=base_dir)


def load_compose(path: Path) -> ComposeProject:
    """Read and translate a compose file."""
    return parse_compose(path.read_text(encoding="utf-8"), path.parent)
