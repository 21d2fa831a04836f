"""Which runtime a run uses when the command line names none: one rule, for `run`, `plan` and `audit`.

Why here and not in the CLI: the rule is part of what an Expert may do (native means the host itself), so
`sandbox audit` reports it and the CLI applies it from the same function.
"""

from __future__ import annotations

from sandbox.config import PerstackConfig, is_registry_key

__all__ = ["default_runtime", "reaches_registry_expert"]

REFERENCE_DEFAULT = "perstack"


def reaches_registry_expert(config: PerstackConfig, expert: str) -> bool:
    """Whether `expert` is a registry Expert or can delegate, directly or not, to one."""
    seen, todo = {expert}, [expert]
    while todo:
        key = todo.pop()
        if is_registry_key(key):
            return True
        for delegate in config.experts[key].delegates if key in config.experts else ():
            if delegate not in seen:
                seen.add(delegate)
                todo.append(delegate)
    return False


def default_runtime(config: PerstackConfig, expert: str) -> tuple[str, str | None]:
    """(the runtime without `--runtime`, the file's choice it overrides or None).

    Local Experts keep the CLI reference's rule (the file's `runtime`, else `perstack`). An Expert graph with
    someone else's Expert in it (a registry Expert run or delegated to) runs in the docker sandbox whatever
    the file says: the file may be the Expert's own work. Running it natively takes `--runtime` on the
    command line.
    """
    chosen = config.runtime or REFERENCE_DEFAULT
    if chosen != "docker" and reaches_registry_expert(config, expert):
        return "docker", chosen
    return chosen, None
