"""Default message templates per kind, and rendering with the config's overrides.

Templates use string.Template `$field`s (the config validates them against
TEMPLATE_FIELDS); a field the notifier does not know yet renders as `—`.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template

from dhash_console.config.notifications import TEMPLATE_FIELDS

MISSING = "—"

DEFAULT_TITLES: dict[str, str] = {
    "rollout_started": "$env: rollout $from_version → $to_version started",
    "gate_failed": "$env: gate $gate failed — $action",
    "rollback_started": "$env: rolling back $from_version → $rollback_version",
    "rollback_finished": "$env: rollback $rollback_result",
    "rollout_succeeded": "$env: $to_version rolled out and healthy",
    "rollout_failed": "$env: rollout of $to_version $outcome",
    "test": "dhash-console test notification",
}

DEFAULT_TEXTS: dict[str, str] = {
    "rollout_started": (
        "Started by $started_by via $via on $host. Monitoring for $duration with gates: $gates."
    ),
    "gate_failed": (
        "Gate $gate failed in phase $phase: measured $value, condition $condition, "
        "$consecutive_fails consecutive failure(s) (limit $failure_limit). $gate_reason. "
        "Action: $action."
    ),
    "rollback_started": ("Reason: $reason. Requested by $requested_by. Restoring backup $backup."),
    "rollback_finished": (
        "Now on $rollback_version; health came back: $healthy. Reason: $reason. "
        "Backup restored: $backup. $detail"
    ),
    "rollout_succeeded": (
        "$from_version → $to_version passed its whole monitoring window ($duration). "
        "Started by $started_by."
    ),
    "rollout_failed": (
        "Outcome: $outcome (exit code $exit_code). Reason: $reason. "
        "Last phase: $phase. Started by $started_by."
    ),
    "test": "$message",
}


class Templates:
    """The default templates with the config's overrides laid over them."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self._titles = dict(DEFAULT_TITLES)
        self._texts = dict(DEFAULT_TEXTS)
        for key, text in (overrides or {}).items():
            kind, _, part = key.partition(".")
            (self._titles if part == "title" else self._texts)[kind] = text

    def render(self, kind: str, values: Mapping[str, str]) -> tuple[str, str]:
        """(title, text) for one kind."""
        full = {name: values.get(name) or MISSING for name in TEMPLATE_FIELDS}
        title = Template(self._titles.get(kind, "$kind")).safe_substitute(full)
        text = Template(self._texts.get(kind, "")).safe_substitute(full)
        return title.strip(), " ".join(text.split())
