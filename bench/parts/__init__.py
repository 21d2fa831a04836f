"""The benchmark's parts. Each `run(ctx)` measures one thing and returns a `PartResult`.

A part measures its baseline in the same run (bare `docker run`, the reference flow, the direct path,
`python -c pass`...), so its rows are ratios against numbers taken minutes apart on the same machine.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..harness import REPO, DockerSite, Snapshot, log
from ..report import Row
from ..stats import Verdict

__all__ = ["PART_NAMES", "Context", "PartResult"]

PART_NAMES = ("runtime", "startup", "warm", "cold", "proxy", "concurrency")


@dataclass
class PartResult:
    """What one part measured: raw data for the JSON file, table rows, target verdicts."""

    name: str
    status: str = "ok"
    data: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    load_average: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "loadAverage": self.load_average,
            "data": self.data,
            "rows": [r.to_json() for r in self.rows],
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Context:
    """Settings and lazily created shared resources of one benchmark run."""

    runs: int = 10
    warmup: int = 2
    concurrency: tuple[int, ...] = (1, 4, 8)
    concurrency_repeats: int = 3
    proxy_download_mb: int = 200
    proxy_download_reps: int = 10
    proxy_requests: int = 500
    runtime_steps: int = 50
    keep_cold_image: bool = False
    repo: Path = REPO
    _work: Path | None = None
    _snapshot: Snapshot | None = None
    _site: DockerSite | None = None

    @property
    def work(self) -> Path:
        if self._work is None:
            self._work = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
            self._work.chmod(0o755)
        return self._work

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = Snapshot.create(self.work, self.repo)
            log(f"code snapshot for this run: {self._snapshot.root}")
        return self._snapshot

    def docker(self) -> DockerSite:
        """The shared docker site, with the bench Expert's images built and the LLM server running."""
        if self._site is None:
            self._site = DockerSite(self.snapshot(), self.work)
        self._site.prepare()
        return self._site

    def close(self) -> None:
        if self._site is not None:
            self._site.close()
            self._site = None
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None
