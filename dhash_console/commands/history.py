"""`dhash-console history [--env ENV] [--limit N] [--show ID]`: past rollouts, from the journal.

The list says, for each rollout, what went where, how it ended and why; a rollout whose
process died reads `interrupted`. `--show ID` gives one rollout's timeline. Everything shown
that came from outside (reasons, log lines) is cleaned of escapes and printed as plain text.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from dhash_console.commands.context import CommandContext
    from dhash_console.store.history import HistoryStore, RolloutRecord

EXAMPLES = """\
examples:
  dhash-console history
  dhash-console history --env production --limit 50
  dhash-console history --show r-20260101-120102-3fa9
  dhash-console history --show r-20260101-1201       (a unique prefix is enough)
  dhash-console history --json | jq 'select(.type == "rollout") | .effective_status'
"""

LOG_TAIL = 20
TIMELINE_TYPES = (
    "phase_started",
    "phase_finished",
    "monitor_paused",
    "monitor_resumed",
    "rollback_requested",
    "rollback_started",
    "rollback_finished",
    "control_acknowledged",
    "notification_sent",
)

# Said in words and symbols, never by colour alone.
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "running": ("▶ running", "cyan"),
    "succeeded": ("✔ succeeded", "green"),
    "rolled_back": ("↩ rolled back", "yellow"),
    "rollback_failed": ("✖ rollback failed", "bold red"),
    "aborted": ("■ aborted", "yellow"),
    "interrupted": ("⚠ interrupted", "bold yellow"),
    "failed": ("✖ failed", "red"),
}
VERDICT_LABELS = {
    "passed": ("✔ PASSED", "green"),
    "failed": ("✖ FAILED", "bold red"),
    "inconclusive": ("? INCONCLUSIVE", "yellow"),
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "history",
        help="past rollouts, from the history database",
        description="List past rollouts, newest first: versions, how each ended and why. "
        "A rollout whose process died is shown as interrupted, with the phase it reached. "
        "--show ID prints one rollout's timeline: phases, gate verdicts, rollback, the "
        "rollback plan and the last log lines. With --json: one JSON object per rollout and "
        "a summary (list), or one object (--show).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", metavar="ENV", help="only this environment's rollouts")
    parser.add_argument(
        "--limit", metavar="N", type=_positive, default=20, help="how many (default 20)"
    )
    parser.add_argument(
        "--show", metavar="ID", help="one rollout's timeline (a unique id prefix is enough)"
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import asyncio

    return asyncio.run(_run(args, ctx))


async def _run(args: argparse.Namespace, ctx: CommandContext) -> int:
    from dhash_console.errors import UsageError
    from dhash_console.store.history import HistoryStore

    path = ctx.history_path
    if not path.exists():
        if args.show:
            raise UsageError(f"--show: no rollout {args.show!r}: there is no history yet ({path})")
        _no_history(ctx, path)
        return 0
    async with await HistoryStore.open(path) as store:
        if args.show:
            record = await store.get_rollout(args.show)  # an ambiguous prefix: exit 2
            if record is None:
                raise UsageError(f"--show: no rollout with id {args.show!r} in {path}")
            timeline = await _timeline(store, record, ctx)
            if ctx.json:
                ctx.emit_json(timeline)
            else:
                _print_timeline(ctx.console, record, timeline)
            return 0
        records = await store.list_rollouts(env=args.env, limit=args.limit)
    if ctx.json:
        for record in records:
            ctx.emit_json({"type": "rollout", **record.to_dict()})
        ctx.emit_json(_summary(path, len(records), exists=True))
    else:
        _print_list(ctx.console, records, path, args.env)
    return 0


def _summary(path: Any, count: int, *, exists: bool) -> dict[str, Any]:
    return {"type": "summary", "database": str(path), "exists": exists, "count": count}


def _no_history(ctx: CommandContext, path: Any) -> None:
    if ctx.json:
        ctx.emit_json(_summary(path, 0, exists=False))
    else:
        ctx.console.print(f"No history yet: {path} does not exist (no rollout has run here).")


# -- the data of one rollout's timeline (also the --json shape) --------------------------------


async def _timeline(
    store: HistoryStore, record: RolloutRecord, ctx: CommandContext
) -> dict[str, Any]:
    from dhash_console.runlog import log_path

    events = await store.events(record.id, types=TIMELINE_TYPES)
    verdicts = await store.gate_verdicts(record.id)
    logs = await store.last_events(record.id, LOG_TAIL, types=["log_line"])
    requests = await store.control_requests(record.id)
    end_of_record = record.finished_at or record.last_event_at or record.started_at
    log_file = log_path(ctx.state_dir, record.id)
    return {
        "type": "rollout_timeline",
        "rollout": record.to_dict(),
        "phases": _phases(events, record, end_of_record),
        "gates": [verdict.model_dump(include=_VERDICT_FIELDS) for verdict in verdicts],
        "samples": await store.sample_counts(record.id),
        "rollback": _rollback(events),
        "pauses": [
            event.model_dump(exclude={"rollout_id", "seq"})
            for event in events
            if event.type in ("monitor_paused", "monitor_resumed")
        ],
        "control_requests": [request.to_dict() for request in requests],
        # Failed sends are the dead letters: what could not be told, and to whom.
        "notifications": [
            event.model_dump(include={"at", "channel", "event_type", "ok", "detail"})
            for event in events
            if event.type == "notification_sent"
        ],
        "log_tail": [event.model_dump(include=_LOG_FIELDS) for event in logs],
        "log_file": str(log_file) if log_file.exists() else None,
    }


_VERDICT_FIELDS = {
    "at",
    "gate",
    "verdict",
    "reason",
    "value",
    "condition",
    "samples",
    "fails",
    "inconclusive",
    "critical",
}
_LOG_FIELDS = {"at", "level", "source", "message"}


def _phases(events: list[Any], record: RolloutRecord, end: float) -> list[dict[str, Any]]:
    """Pair each phase's start with its end; a phase never ended ran until the record stops."""
    phases: list[dict[str, Any]] = []
    for event in events:
        if event.type == "phase_started":
            phases.append(
                {
                    "phase": event.phase,
                    "status": None,
                    "started_at": event.at,
                    "finished_at": None,
                    "duration_s": None,
                    "detail": event.detail,
                }
            )
        elif event.type == "phase_finished":
            for phase in reversed(phases):
                if phase["phase"] == event.phase and phase["status"] is None:
                    phase.update(
                        status=event.status, finished_at=event.at, duration_s=event.duration_s
                    )
                    if event.detail:
                        phase["detail"] = event.detail
                    break
    effective = record.effective_status
    for i, phase in enumerate(phases):
        if phase["status"] is None:
            # Still going, cut short by the process's death, or left open when the engine
            # moved on (to a rollback, say): it lasted until the next phase or the end.
            last = i == len(phases) - 1
            if last and effective in ("running", "interrupted"):
                phase["status"] = effective
            else:
                phase["status"] = "cut short"
            until = end if last else phases[i + 1]["started_at"]
            phase["duration_s"] = max(0.0, until - phase["started_at"])
    return phases


def _rollback(events: list[Any]) -> dict[str, Any] | None:
    parts: dict[str, Any] = {}
    for event in events:
        for kind in ("requested", "started", "finished"):
            if event.type == f"rollback_{kind}":
                parts[kind] = event.model_dump(exclude={"rollout_id", "seq", "type"})
    return parts or None


# -- text ------------------------------------------------------------------------------------


def _safe(text: object) -> str:
    from dhash_console.textsafe import clean

    return clean("" if text is None else str(text))


def _status_text(status: str) -> Text:
    from rich.text import Text

    label, style = STATUS_LABELS.get(status, (status, ""))
    return Text(_safe(label), style=style)


def _when(epoch: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    import time

    return "—" if epoch is None else time.strftime(fmt, time.gmtime(epoch))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _versions(record: RolloutRecord) -> str:
    return f"{record.from_version or '?'} → {record.to_version}"


def _ending(record: RolloutRecord, status: str) -> str:
    if status == "interrupted" and record.status == "running":
        where = f" during {record.phase}" if record.phase else ""
        return f"process {record.pid} on {record.host} is gone{where}"
    if status == "running":
        return f"in {record.phase}" if record.phase else "starting"
    return record.reason or ""


def _print_list(console: Console, records: list[RolloutRecord], path: Any, env: str | None) -> None:
    from rich.text import Text

    if not records:
        where = f" for environment {env}" if env else ""
        console.print(Text(_safe(f"No rollouts{where} in {path}.")))
        return
    header = ("ID", "ENV", "FROM → TO", "STATUS", "STARTED (UTC)", "RAN", "WHO", "WHY IT ENDED")
    rows: list[tuple[list[str], str]] = []
    for record in records:
        status = record.effective_status
        label, style = STATUS_LABELS.get(status, (status, ""))
        versions = _versions(record) + (" (dry run)" if record.dry_run else "")
        cells = [
            record.id,
            record.env,
            versions,
            label,
            _when(record.started_at, "%Y-%m-%d %H:%M"),
            _duration(record.elapsed_s),
            f"{record.started_by} ({record.via})",
            _ending(record, status),
        ]
        rows.append(([_one_line(cell) for cell in cells], style))
    # Plain aligned columns, one rollout a line (whole, also when piped: grep-able). A Rich
    # Table would measure and render every cell several times: most of the 300 ms budget.
    widths = [
        max(_width(cells[i]) for cells in [list(header)] + [r[0] for r in rows])
        for i in range(len(header))
    ]
    out = Text()
    _columns(out, list(header), widths, "bold", status_style="bold")
    out.append("  ".join("─" * w for w in widths[:-1]) + "  " + "─" * len(header[-1]) + "\n")
    for cells, style in rows:
        _columns(out, cells, widths, "", status_style=style)
    out.rstrip()
    console.print(out, soft_wrap=True)


def _one_line(text: str) -> str:
    return " ".join(_safe(text).split())


def _width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _columns(out: Text, cells: list[str], widths: list[int], style: str, status_style: str) -> None:
    for i, cell in enumerate(cells):
        last = i == len(cells) - 1
        out.append(cell, style=status_style if i == 3 else style)
        if not last:
            out.append(" " * (widths[i] - _width(cell) + 2))
    out.append("\n")


def _print_timeline(console: Console, record: RolloutRecord, timeline: dict[str, Any]) -> None:
    from rich.text import Text

    def line(*parts: str | Text | tuple[str, str]) -> None:
        text = Text()
        for part in parts:
            if isinstance(part, tuple):
                text.append(_safe(part[0]), style=part[1])
            else:
                text.append(part if isinstance(part, Text) else _safe(part))
        console.print(text)

    def heading(title: str) -> None:
        console.print()
        line((title, "bold"))

    status = record.effective_status
    line(
        ("rollout ", "bold"),
        (record.id, "bold"),
        "  ",
        record.env,
        "  ",
        _versions(record),
        "  ",
        _status_text(status),
        f" (exit {record.exit_code})" if record.exit_code is not None else "",
        "  [dry run]" if record.dry_run else "",
    )
    line(
        f"started {_when(record.started_at)} UTC by {record.started_by} via {record.via} "
        f"on {record.host} (pid {record.pid}); ran {_duration(record.elapsed_s)}"
    )
    line(f"window {_duration(record.duration_s)} at {_duration(record.interval_s)} intervals")
    ending = _ending(record, status)
    if ending:
        line("why it ended: " if status not in ("running",) else "now: ", ending)

    heading("phases")
    if not timeline["phases"]:
        line("  none recorded")
    for phase in timeline["phases"]:
        detail = f"  {phase['detail']}" if phase["detail"] else ""
        line(
            f"  {phase['phase']:<10} {phase['status']:<12} "
            f"{_duration(phase['duration_s']):>8}  at {_when(phase['started_at'], '%H:%M:%S')}",
            detail,
        )

    heading("gates")
    for verdict in timeline["gates"]:
        label, style = VERDICT_LABELS.get(verdict["verdict"], (verdict["verdict"], ""))
        value = "—" if verdict["value"] is None else f"{verdict['value']:.4g}"
        line(
            "  ",
            (label, style),
            f" {verdict['gate']}",
            " (critical)" if verdict["critical"] else "",
            f": measured {value}, condition {verdict['condition']}; "
            f"{verdict['samples']} samples, {verdict['fails']} failed, "
            f"{verdict['inconclusive']} inconclusive — ",
            verdict["reason"],
        )
    judged = {verdict["gate"] for verdict in timeline["gates"]}
    for gate, counts in timeline["samples"].items():
        if gate not in judged:
            line(
                f"  … {gate}: no verdict; {sum(counts.values())} samples (",
                ", ".join(f"{n} {result}" for result, n in sorted(counts.items())),
                ")",
            )
    if not timeline["gates"] and not timeline["samples"]:
        line("  none evaluated")

    rollback = timeline["rollback"]
    if rollback:
        heading("rollback")
        if "requested" in rollback:
            asked = rollback["requested"]
            how = "automatically" if asked["automatic"] else "by hand"
            line(
                f"  requested {how} by {asked['by']} at {_when(asked['at'], '%H:%M:%S')}: ",
                asked["reason"],
            )
        if "started" in rollback:
            began = rollback["started"]
            backup = f", restoring {began['backup']}" if began.get("backup") else ""
            line(f"  started {began['from_version'] or '?'} → {began['to_version']}{backup}")
        if "finished" in rollback:
            done = rollback["finished"]
            ok = ("✔ done", "green") if done["ok"] else ("✖ FAILED", "bold red")
            health = "healthy" if done["healthy"] else "NOT healthy"
            line(
                "  ",
                ok,
                f": version {done['version'] or '?'}, {health}",
                f" — {done['detail']}" if done["detail"] else "",
            )
        elif "started" in rollback:
            line("  no end recorded")

    if timeline["pauses"] or timeline["control_requests"]:
        heading("operator actions")
        for event in timeline["pauses"]:
            what = (
                "paused: " + event["reason"]
                if event["type"] == "monitor_paused"
                else ("resumed" + (f" by {event['by']}" if event["by"] else ""))
            )
            line(f"  {_when(event['at'], '%H:%M:%S')} ", what)
        for request in timeline["control_requests"]:
            line(
                f"  request #{request['id']} {request['action']} by {request['by']} at "
                f"{_when(request['requested_at'], '%H:%M:%S')} ({request['state']})",
                f": {request['reason']}" if request["reason"] else "",
            )

    if timeline["notifications"]:
        dead = [n for n in timeline["notifications"] if not n["ok"]]
        heading(f"notifications ({len(dead)} not sent)")
        for note in timeline["notifications"]:
            state = "sent" if note["ok"] else "NOT SENT (dead letter)"
            line(
                f"  {_when(note['at'], '%H:%M:%S')} {note['event_type']} via {note['channel']}: "
                f"{state}",
                f" — {note['detail']}" if note["detail"] and not note["ok"] else "",
            )

    heading("rollback plan")
    line("  ", record.rollback_plan or "none recorded")

    heading(f"last log lines (up to {LOG_TAIL})")
    if not timeline["log_tail"]:
        line("  none")
    for log in timeline["log_tail"]:
        line(
            f"  {_when(log['at'], '%H:%M:%S')} {log['level']:<7} {log['source']}: ", log["message"]
        )
    if timeline["log_file"]:
        line("full log: ", timeline["log_file"])
