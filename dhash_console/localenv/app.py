"""The dhash reference service: a Starlette app over a migrated SQLite database.

Endpoints: /health, /version, POST /hash, GET and DELETE /hashes/{id}, /search, /metrics and
/admin/faults (loopback clients only). Faults (errors, latency, health down) are injected on
the API routes as the FaultSpec in force says, and counted in the metrics like real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dhash_console.localenv.db import Database
from dhash_console.localenv.dhash import decode, dhash_image, from_hex, to_hex
from dhash_console.localenv.faults import FaultSpec
from dhash_console.localenv.injection import FaultMiddleware, FaultState
from dhash_console.localenv.metrics import MetricsMiddleware, ServiceMetrics
from dhash_console.localenv.routing import RouteTemplates
from dhash_console.localenv.upload import UploadError, read_upload

LOG = logging.getLogger("dhash")
API_PATHS = ("/hash", "/hashes/{id}", "/search")
HEALTH_DB_TIMEOUT_S = 2.0
QUEUE_INTERVAL_S = 0.25
DEFAULT_MAX_DISTANCE = 10
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def is_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}")
    return value


def _path_id(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or len(raw) > 18:
        raise HTTPException(404, "no such hash")
    return int(raw)


def _hash_upload(data: bytes) -> tuple[int, int, int]:
    """(dHash, width, height); ValueError when the bytes are not an image."""
    img = decode(data)
    return dhash_image(img), img.width, img.height


class Service:
    """The endpoints, over one database, one fault state and one metrics registry."""

    def __init__(self, db: Database, version: str, faults: FaultState, metrics: ServiceMetrics):
        self.db = db
        self.version = version
        self.faults = faults
        self.metrics = metrics

    async def health(self, request: Request) -> Response:
        db_status = "ok"
        try:
            await asyncio.wait_for(self.db.ping(), HEALTH_DB_TIMEOUT_S)
        except TimeoutError:
            db_status = "timeout"
        except sqlite3.Error as exc:
            LOG.warning("health: database unreadable: %s", exc)
            db_status = "error"
        spec = self.faults.active()
        down = db_status != "ok" or (spec is not None and spec.health_down)
        body = {"status": "down" if down else "ok", "version": self.version, "db": db_status}
        return JSONResponse(body, status_code=503 if down else 200)

    async def version_info(self, request: Request) -> Response:
        return JSONResponse({"version": self.version})

    async def create_hash(self, request: Request) -> Response:
        try:
            upload = await read_upload(request)
        except UploadError as exc:
            return error(exc.status, exc.message)
        try:
            value, width, height = await asyncio.to_thread(_hash_upload, upload.data)
        except ValueError as exc:
            return error(400, str(exc))
        stored = await self.db.insert_hash(to_hex(value), upload.filename, width, height)
        body = {"id": stored.id, "hash": stored.hash, "width": width, "height": height}
        return JSONResponse(body, status_code=201)

    async def get_hash(self, request: Request) -> Response:
        stored = await self.db.get_hash(_path_id(request))
        if stored is None:
            return error(404, "no such hash")
        return JSONResponse(stored.to_json())

    async def delete_hash(self, request: Request) -> Response:
        if not await self.db.delete_hash(_path_id(request)):
            return error(404, "no such hash")
        return Response(status_code=204)

    async def search(self, request: Request) -> Response:
        raw_hash = request.query_params.get("hash")
        raw_id = request.query_params.get("id")
        if (raw_hash is None) == (raw_id is None):
            return error(400, "give exactly one of hash=HEX or id=N")
        max_distance = _int_param(request, "max_distance", DEFAULT_MAX_DISTANCE, 0, 64)
        limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        exclude: int | None = None
        if raw_hash is not None:
            try:
                value = from_hex(raw_hash)
            except ValueError as exc:
                return error(400, str(exc))
        else:
            assert raw_id is not None
            if not raw_id.isdigit() or len(raw_id) > 18:
                return error(400, "id must be a positive integer")
            stored = await self.db.get_hash(int(raw_id))
            if stored is None:
                return error(404, "no such hash")
            value, exclude = from_hex(stored.hash), stored.id  # its own near duplicates
        matches = await self.db.search(value, max_distance, limit, exclude_id=exclude)
        return JSONResponse(
            {
                "hash": to_hex(value),
                "max_distance": max_distance,
                "matches": [{"id": m.id, "hash": m.hash, "distance": m.distance} for m in matches],
            }
        )

    async def metrics_text(self, request: Request) -> Response:
        try:
            stored, pending = await self.db.counts()
        except sqlite3.Error as exc:
            LOG.warning("metrics: cannot count rows: %s", exc)  # the gauges keep their last value
        else:
            self.metrics.hashes_stored.set(stored)
            self.metrics.queue_pending.set(pending)
        return Response(self.metrics.render(), media_type=PROMETHEUS_TEXT)

    async def admin_faults(self, request: Request) -> Response:
        if not is_loopback(request):
            return error(403, "fault injection is for loopback clients only")
        if request.method == "POST":
            try:
                spec = FaultSpec.model_validate_json(await request.body())
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                    for e in exc.errors()
                )
                return error(422, problems)
            self.faults.set(spec)
            LOG.info("faults set to %r", spec.to_spec() or "none")
        return JSONResponse(self.faults.to_json())

    async def queue_worker(self) -> None:
        """Work the processing queue off in the background, as the real service does."""
        while True:
            try:
                await self.db.process_pending()
            except sqlite3.Error as exc:
                LOG.warning("queue: %s", exc)
            await asyncio.sleep(QUEUE_INTERVAL_S)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _db_error(request: Request, exc: Exception) -> Response:
    LOG.error("database error on %s: %s", request.url.path, exc)
    return error(503, "database unavailable")


def create_app(db_path: Path, version: str, faults: FaultSpec) -> Starlette:
    """The service over `db_path` (migrated already), answering as `version`."""
    db = Database(db_path)
    service = Service(db, version, FaultState(faults), ServiceMetrics(version))
    routes = [
        Route("/health", service.health, methods=["GET"]),
        Route("/version", service.version_info, methods=["GET"]),
        Route("/hash", service.create_hash, methods=["POST"]),
        Route("/hashes/{id}", service.get_hash, methods=["GET"]),
        Route("/hashes/{id}", service.delete_hash, methods=["DELETE"]),
        Route("/search", service.search, methods=["GET"]),
        Route("/metrics", service.metrics_text, methods=["GET"]),
        Route("/admin/faults", service.admin_faults, methods=["GET", "POST"]),
    ]
    templates = RouteTemplates(routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        worker = asyncio.create_task(service.queue_worker())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await db.close()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=service.metrics, templates=templates),
            Middleware(
                FaultMiddleware, state=service.faults, templates=templates, api_paths=API_PATHS
            ),
        ],
        exception_handlers={HTTPException: _http_error, sqlite3.Error: _db_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app
