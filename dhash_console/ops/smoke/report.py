"""What smoke tests found: one result per test, grouped, with durations."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Group = Literal["api", "db", "e2e"]
GROUP_TITLES: dict[Group, str] = {"api": "API", "db": "DB", "e2e": "End to end"}


@dataclass(frozen=True)
class SmokeResult:
    group: Group
    name: str
    ok: bool
    duration_s: float
    detail: str = ""  # cleaned of escapes and control characters, bounded in length
    skipped: bool = False  # not applicable to this environment (ok stays True)

    @property
    def status(self) -> Literal["passed", "failed", "skipped"]:
        if not self.ok:
            return "failed"
        return "skipped" if self.skipped else "passed"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


@dataclass
class SmokeReport:
    env: str
    base_url: str
    started_at: float
    duration_s: float = 0.0
    results: list[SmokeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def failed(self) -> list[SmokeResult]:
        return [result for result in self.results if not result.ok]

    def group(self, group: Group) -> list[SmokeResult]:
        return [result for result in self.results if result.group == group]

    def counts(self) -> dict[str, int]:
        statuses = [result.status for result in self.results]
        return {
            "tests": len(statuses),
            "passed": statuses.count("passed"),
            "failed": statuses.count("failed"),
            "skipped": statuses.count("skipped"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "base_url": self.base_url,
            "ok": self.ok,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            **self.counts(),
            "results": [result.to_dict() for result in self.results],
        }
