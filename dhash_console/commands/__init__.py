"""One module a command: each has `register(subparsers)` and `run(args, ctx) -> int`.

Modules import only light things at the top (argparse, typing): `--help` must stay fast
and must never import the TUI. Heavy imports go inside `run`.
"""
