"""File tools of the base skill. Each takes the workspace and the model's arguments and returns text.

They run in a worker thread (blocking I/O); every path goes through `Workspace.resolve`. Errors the model
should see are raised as `ToolError`/`PathDeniedError` and become `isError` results.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from sandbox._errors import ToolError
from sandbox.agent.skills.builtin._paths import Workspace

__all__ = ["FS_TOOLS"]

_MAX_READ = 1_000_000
_MAX_RESULTS = 1000
_MAX_GREP_FILE = 2_000_000


def _str(args: dict[str, Any], key: str, default: str | None = None) -> str:
    value = args.get(key, default)
    if not isinstance(value, str):
        raise ToolError(f"Argument {key} must be a string")
    return value


def read_text_file(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), must_exist=True)
    if not path.is_file():
        raise ToolError(f"Not a file: {args['path']}")
    if path.stat().st_size > _MAX_READ:
        raise ToolError(f"File is larger than {_MAX_READ} bytes; read it with exec (head/sed) instead")
    text = path.read_text(encoding="utf-8", errors="replace")
    start, end = args.get("from"), args.get("to")
    if isinstance(start, int) or isinstance(end, int):
        lines = text.splitlines(keepends=True)
        lo = max(int(start or 1), 1) - 1
        hi = int(end) if isinstance(end, int) else len(lines)
        text = "".join(lines[lo:hi])
    return text


def _write(path: Path, text: str, *, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_text_file(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), allow_root=False)
    text = _str(args, "text")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, text, append=False)
    return f"Wrote {len(text.encode())} bytes to {ws.relative(path)}"


def append_text_file(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), allow_root=False)
    text = _str(args, "text")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, text, append=True)
    return f"Appended {len(text.encode())} bytes to {ws.relative(path)}"


def edit_text_file(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), must_exist=True)
    old, new = _str(args, "oldText"), _str(args, "newText")
    if not old:
        raise ToolError("oldText must not be empty")
    text = path.read_text(encoding="utf-8")
    count = text.count(old)
    if count != 1:
        raise ToolError(f"oldText must occur exactly once in {args['path']}; found {count}")
    _write(path, text.replace(old, new, 1), append=False)
    return f"Edited {ws.relative(path)}"


def list_directory(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path", "."), must_exist=True)
    if not path.is_dir():
        raise ToolError(f"Not a directory: {args.get('path', '.')}")
    entries = []
    for child in sorted(path.iterdir()):
        if path == ws.root and child.name == "perstack":
            continue
        kind = "symlink" if child.is_symlink() else "directory" if child.is_dir() else "file"
        entry: dict[str, Any] = {"name": child.name, "type": kind}
        if kind == "file":
            entry["size"] = child.stat().st_size
        entries.append(entry)
        if len(entries) >= _MAX_RESULTS:
            break
    return json.dumps(entries)


def create_directory(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), allow_root=False)
    path.mkdir(parents=True, exist_ok=True)
    return f"Created {ws.relative(path)}"


def delete_file(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), must_exist=True, allow_root=False)
    if path.is_dir():
        if args.get("recursive") is True:
            shutil.rmtree(path)
        else:
            path.rmdir()
    else:
        path.unlink()
    return f"Deleted {ws.relative(path)}"


def move_file(ws: Workspace, args: dict[str, Any]) -> str:
    src = ws.resolve(_str(args, "source"), must_exist=True, allow_root=False)
    dst = ws.resolve(_str(args, "destination"), allow_root=False)
    if dst.exists():
        raise ToolError(f"Destination exists: {args['destination']}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    src.rename(dst)
    return f"Moved {ws.relative(src)} to {ws.relative(dst)}"


def get_file_info(ws: Workspace, args: dict[str, Any]) -> str:
    path = ws.resolve(_str(args, "path"), must_exist=True)
    st = path.stat()
    return json.dumps(
        {
            "path": ws.relative(path),
            "type": "directory" if path.is_dir() else "file",
            "size": st.st_size,
            "modifiedAt": int(st.st_mtime * 1000),
        }
    )


def _walk(ws: Workspace, base: Path) -> Any:
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        current = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not (current == ws.root and d == "perstack") and d not in {".git", "node_modules"}
        )
        for name in sorted(filenames):
            yield current / name


def glob_files(ws: Workspace, args: dict[str, Any]) -> str:
    pattern = _str(args, "pattern")
    base = ws.resolve(_str(args, "path", "."), must_exist=True)
    matches: list[str] = []
    for file in _walk(ws, base):
        rel = str(file.relative_to(base))
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(file.name, pattern):
            matches.append(ws.relative(file))
            if len(matches) >= _MAX_RESULTS:
                break
    return "\n".join(matches)


def grep_files(ws: Workspace, args: dict[str, Any]) -> str:
    try:
        regex = re.compile(_str(args, "pattern"))
    except re.error as exc:
        raise ToolError(f"Invalid regular expression: {exc}") from None
    include = args.get("include")
    base = ws.resolve(_str(args, "path", "."), must_exist=True)
    files = [base] if base.is_file() else _walk(ws, base)
    hits: list[str] = []
    for file in files:
        if isinstance(include, str) and not fnmatch.fnmatch(file.name, include):
            continue
        if file.is_symlink() or file.stat().st_size > _MAX_GREP_FILE:
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if regex.search(line):
                hits.append(f"{ws.relative(file)}:{number}: {line[:500]}")
                if len(hits) >= _MAX_RESULTS:
                    return "\n".join(hits)
    return "\n".join(hits)


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_PATH = {"type": "string", "description": "Path relative to the workspace"}

FS_TOOLS: dict[str, tuple[str, dict[str, Any], Any]] = {
    "readTextFile": (
        "Read a UTF-8 text file in the workspace; optional 1-based line range from/to.",
        _schema({"path": _PATH, "from": {"type": "integer"}, "to": {"type": "integer"}}, ["path"]),
        read_text_file,
    ),
    "writeTextFile": (
        "Create or overwrite a text file in the workspace (parent directories are created).",
        _schema({"path": _PATH, "text": {"type": "string"}}, ["path", "text"]),
        write_text_file,
    ),
    "appendTextFile": (
        "Append text to a file in the workspace.",
        _schema({"path": _PATH, "text": {"type": "string"}}, ["path", "text"]),
        append_text_file,
    ),
    "editTextFile": (
        "Replace one exact, unique occurrence of oldText with newText in a file.",
        _schema(
            {"path": _PATH, "oldText": {"type": "string"}, "newText": {"type": "string"}},
            ["path", "oldText", "newText"],
        ),
        edit_text_file,
    ),
    "listDirectory": (
        "List a directory of the workspace (JSON: name, type, size).",
        _schema({"path": _PATH}, []),
        list_directory,
    ),
    "createDirectory": (
        "Create a directory (and parents).",
        _schema({"path": _PATH}, ["path"]),
        create_directory,
    ),
    "deleteFile": (
        "Delete a file, or a directory (recursive=true for non-empty ones).",
        _schema({"path": _PATH, "recursive": {"type": "boolean"}}, ["path"]),
        delete_file,
    ),
    "moveFile": (
        "Move or rename a file inside the workspace.",
        _schema({"source": _PATH, "destination": _PATH}, ["source", "destination"]),
        move_file,
    ),
    "getFileInfo": (
        "Size, type and modification time of a path.",
        _schema({"path": _PATH}, ["path"]),
        get_file_info,
    ),
    "glob": (
        "Find files whose relative path or name matches a glob pattern (e.g. **/*.py, *.md).",
        _schema({"pattern": {"type": "string"}, "path": _PATH}, ["pattern"]),
        glob_files,
    ),
    "grep": (
        "Search file contents with a regular expression; lines as path:line: text.",
        _schema(
            {
                "pattern": {"type": "string"},
                "path": _PATH,
                "include": {"type": "string", "description": "glob"},
            },
            ["pattern"],
        ),
        grep_files,
    ),
}
