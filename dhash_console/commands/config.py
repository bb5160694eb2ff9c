"""`dhash-console config validate | schema`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console config validate
  dhash-console config validate --config staging-gates.json
  dhash-console config schema > quality-gates-config.schema.json
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "config",
        help="check the config, or print its JSON Schema",
        description="Check the quality-gates config (every error names its field, exit 2), "
        "or print the JSON Schema generated from the models, for editors.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["validate", "schema"])
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import json

    from dhash_console.config import Config

    if args.action == "schema":
        ctx.stdout.write(json.dumps(Config.model_json_schema(by_alias=True), indent=2) + "\n")
        return 0
    config = ctx.config  # raises ConfigError (exit 2) naming every broken field
    for name in config.environments:
        ctx.environment(name)  # overrides are checked once merged
    environments = sorted(config.environments)
    gates = [gate.name for gate in config.gates]
    if ctx.json:
        ctx.emit_json(
            {
                "config": str(ctx.config_path),
                "valid": True,
                "environments": environments,
                "gates": gates,
            }
        )
    else:
        ctx.console.print(
            f"{ctx.config_path}: valid — {len(environments)} environments "
            f"({', '.join(environments)}), {len(gates)} gates ({', '.join(gates)})"
        )
    return 0
