"""`python -m dhash_console.localenv serve|traffic`: the reference service and its load.

serve exits 0 after SIGTERM or SIGINT (a graceful shutdown), 1 when it cannot listen,
2 on bad arguments, 3 when the database is missing or not migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

EXIT_OK = 0
EXIT_LISTEN = 1
EXIT_USAGE = 2
EXIT_SCHEMA = 3
GRACEFUL_SHUTDOWN_S = 5

LOG = logging.getLogger("dhash")


def _faults(text: str) -> object:
    from dhash_console.localenv.faults import parse_faults

    try:
        return parse_faults(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dhash_console.localenv",
        description="The bundled dhash reference service and a traffic generator for it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the service until SIGTERM or SIGINT",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m dhash_console.localenv serve --port 8787 "
        "--db dhash.sqlite3 --version 1.0.0 --faults error_rate=0.5,after_s=10",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--db", type=Path, required=True, help="a migrated SQLite database")
    serve.add_argument("--version", required=True, help="the version this service reports")
    serve.add_argument(
        "--faults",
        type=_faults,
        default=None,
        help="fault spec, e.g. error_rate=0.5,latency_ms=200,health_down=true,after_s=10",
    )

    traffic = sub.add_parser(
        "traffic",
        help="send generated uploads and searches at a steady rate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m dhash_console.localenv traffic "
        "--url http://127.0.0.1:8787 --rps 20 --seconds 30",
    )
    traffic.add_argument("--url", required=True)
    traffic.add_argument("--rps", type=float, default=10.0)
    traffic.add_argument("--seconds", type=float, default=10.0)
    traffic.add_argument(
        "--service-pid",
        type=int,
        default=None,
        help="also stop as soon as this process (the service sent to) is gone",
    )
    return parser


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a taken port is a clear error, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def serve(args: argparse.Namespace) -> int:
    received: list[int] = []
    servers: list[Any] = []

    def note_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        for server in servers:  # arrived between the check below and uvicorn taking over
            server.should_exit = True

    # From the first moment a stop request ends the process with status 0: before serving by
    # not serving at all; while serving uvicorn takes the signals over, shuts down gracefully,
    # then raises them again for the handlers that were there before: these.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, note_signal)
    _configure_logging()
    from dhash_console.localenv.db import SchemaMissing, check_schema
    from dhash_console.localenv.faults import FaultSpec

    try:
        check_schema(args.db)
    except SchemaMissing as exc:
        LOG.error("%s; apply the migrations first (dhash-console migrate). Not starting.", exc)
        return EXIT_SCHEMA
    try:
        sock = _listen(args.host, args.port)
    except OSError as exc:
        LOG.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return EXIT_LISTEN

    import uvicorn

    from dhash_console.localenv.app import create_app

    faults = args.faults if args.faults is not None else FaultSpec()
    app = create_app(args.db, args.version, faults)
    config = uvicorn.Config(
        app,
        log_config=None,  # our handler on stderr; uvicorn's loggers propagate to it
        access_log=False,  # the app writes its own access log line, with the route and timing
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)
    servers.append(server)
    LOG.info(
        "dhash %s on http://%s:%d (database %s, faults %s)",
        args.version,
        args.host,
        args.port,
        args.db,
        faults.to_spec() or "none",
    )
    if received:  # asked to stop before serving: nothing to shut down
        sock.close()
        return EXIT_OK
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
    if not server.started:
        LOG.error("the service did not start (see the errors above)")
        return EXIT_SCHEMA
    LOG.info("dhash %s stopped", args.version)
    return EXIT_OK


def traffic(args: argparse.Namespace) -> int:
    from dhash_console.localenv.traffic import TrafficGenerator, run_for

    if args.rps <= 0 or args.seconds < 0:
        print("--rps must be positive and --seconds not negative", file=sys.stderr)
        return EXIT_USAGE
    alive = None
    if args.service_pid is not None:
        from dhash_console.ops.deploy.local import service_alive

        service_pid: int = args.service_pid

        def alive() -> bool:
            return service_alive(service_pid)

    generator = TrafficGenerator(args.url, args.rps)
    code = EXIT_OK
    try:
        asyncio.run(run_for(generator, args.seconds, alive))
    except KeyboardInterrupt:
        code = 130  # interrupted: still say what was sent
    print(json.dumps(generator.summary()), flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return traffic(args)


if __name__ == "__main__":
    sys.exit(main())
