"""No package imports another package's private modules (issue #13): a package's `_name` modules are its own
business; everything else reaches it through its `__init__`. Checked on the source, so a new import that
crosses the line fails here with the file and the module named."""

from __future__ import annotations

import ast
from pathlib import Path

import sandbox

ROOT = Path(sandbox.__file__).parent


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")
    if level > 1:
        base = base[: -(level - 1)]
    return ".".join([*base, *([module] if module else [])])


def _private_owner(module: str) -> str | None:
    """The package whose private module `module` is (`sandbox.docker._run` -> `sandbox.docker`), if any."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def crossings(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join(("sandbox", *path.relative_to(root).parent.parts))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                names = [_absolute(node.module, node.level, package)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                owner = _private_owner(name)
                if not name.startswith("sandbox") or owner is None or owner in ("", "sandbox"):
                    continue  # the top-level `sandbox._errors` etc. are shared by design
                if package != owner and not package.startswith(owner + "."):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} imports {name}")
    return found


def test_no_package_imports_another_packages_private_modules() -> None:
    assert crossings() == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    """The control: the same walk flags a private import across packages and allows one within."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.py").write_text("from sandbox.b._inner import thing\n")
    (tmp_path / "b" / "y.py").write_text("from ._inner import thing\nfrom sandbox.b._inner import other\n")
    assert crossings(tmp_path) == [f"{tmp_path.name}/a/x.py:1 imports sandbox.b._inner"]
