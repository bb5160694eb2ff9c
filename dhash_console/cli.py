"""Arguments -> config -> command -> exit code. The only place errors become exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dhash_console import __version__
from dhash_console.commands.context import CommandContext

# Each module registers one command (CLI.md). Imported for --help, so they stay light.
COMMAND_MODULES = (
    "deploy",
    "rollback",
    "backup",
    "migrate",
    "monitor",
    "smoke",
    "notify",
    "history",
    "config",
    "validate_logging",
    "demo",
)

EPILOG = """\
examples:
  dhash-console demo --scenario bad-release --no-ui
  dhash-console deploy --env staging --version 1.4.0
  dhash-console rollback --env production --reason "error rate" --yes
  dhash-console history --limit 20
  dhash-console config validate
"""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before or after the command: the sub-parsers repeat them with SUPPRESS
    # defaults so that a value given before the command is not overwritten.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", type=Path, default=default, help="the quality-gates config")
    parser.add_argument(
        "--state-dir", type=Path, default=default, help="history database, run logs, locks"
    )
    parser.add_argument(
        "--no-ui",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="headless: progress as plain lines",
    )
    parser.add_argument(
        "--theme",
        choices=["dark", "light", "high-contrast"],
        default=default,
        help="the console's theme (or DHASH_CONSOLE_THEME, or console.theme in the config)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="one JSON object per event on stdout (implies --no-ui)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage, as CLI.md asks; keep its message, name the flag."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dhash-console",
        description="Guarded-rollout operator console for the dhash service.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dhash-console {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"dhash_console.commands.{name}")
        command_parser = module.register(sub)
        _global_options(command_parser, top=False)
    return parser


def _context(args: argparse.Namespace) -> CommandContext:
    from dhash_console.defaults import default_config_path, default_state_dir

    json_mode = bool(args.json)
    no_ui = (
        bool(args.no_ui) or json_mode or not sys.stdout.isatty() or _truthy(os.environ.get("CI"))
    )
    return CommandContext(
        config_path=args.config or default_config_path(),
        state_dir=args.state_dir or default_state_dir(),
        json=json_mode,
        no_ui=no_ui,
        theme=args.theme,
    )


def _utf8_when_redirected() -> None:
    """Status symbols (✔ ✖ ↶) must not crash a redirected stream in a legacy code page."""
    for stream in (sys.stdout, sys.stderr):
        if not stream.isatty() and (stream.encoding or "").lower() not in ("utf-8", "utf8"):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(encoding="utf-8", errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `history --json | head -1`: the reader left; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    _utf8_when_redirected()
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = _context(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        if ctx.no_ui:
            parser.print_help(sys.stderr)
            return 2
        from dhash_console.ui.launch import run_console

        return run_console(ctx)

    from dhash_console.errors import ConsoleError

    try:
        return int(handler(args, ctx))
    except ConsoleError as exc:
        _report(ctx, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _report(ctx: CommandContext, exc: Exception) -> None:
    from dhash_console.errors import ConfigError

    if isinstance(exc, ConfigError):
        lines = [f"error: invalid config {exc.source}:"] + [f"  {p}" for p in exc.problems]
    else:
        lines = [f"error: {exc}"]
    for line in lines:
        print(line, file=sys.stderr)
    if ctx.json:
        ctx.emit_json(
            {"type": "error", "exit_code": getattr(exc, "exit_code", 1), "message": str(exc)}
        )


if __name__ == "__main__":
    raise SystemExit(main())
