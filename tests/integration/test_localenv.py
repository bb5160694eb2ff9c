"""The reference service as a real process on a free port, over a migrated SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dhash_console.localenv.app import create_app
from dhash_console.localenv.faults import FaultSpec
from dhash_console.localenv.traffic import TrafficGenerator
from dhash_console.localenv.upload import Upload, read_upload
from tests.integration.localenv_helpers import (
    RunningService,
    free_port,
    migrated_db,
    running_service,
    service_argv,
    spawn_service,
    stop_service,
    wait_until_answering,
)

# -- images and their expected hashes, worked out here and not by the service's code ----------


def expected_dhash(pixels: list[list[int]]) -> str:
    value = 0
    for row in pixels:
        for left, right in itertools.pairwise(row):
            value = (value << 1) | (right > left)
    return f"{value:016x}"


def png_of(pixels: list[list[int]]) -> bytes:
    img = Image.new("L", (len(pixels[0]), len(pixels)))
    img.putdata([v for row in pixels for v in row])
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


# 9×8 and grey already, no two neighbours equal: its hash does not depend on any resampling.
KNOWN = [[(x * 53 + y * 29 + x * y * 7) % 256 for x in range(9)] for y in range(8)]


def scene(seed: int, brighten: int = 0, negative: bool = False) -> bytes:
    """A smooth 90×80 image; brightened it stays a near duplicate, negated a different one."""
    rows = []
    for y in range(80):
        row = []
        for x in range(90):
            v = 128 + 100 * ((x * (seed % 7 + 1) + y * 3) % 90 - 45) / 45 * (1 if y < 40 else -1)
            v = 255 - v if negative else v + brighten
            row.append(max(0, min(255, int(v))))
        rows.append(row)
    return png_of(rows)


def upload(url: str, data: bytes, name: str = "x.png") -> httpx.Response:
    return httpx.post(url + "/hash", files={"image": (name, data, "image/png")}, timeout=10)


def counts(url: str) -> dict[tuple[str, str, str], float]:
    """dhash_http_requests_total by (method, path, status), parsed by prometheus_client."""
    text = httpx.get(url + "/metrics", timeout=10).text
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "dhash_http_requests":
            for sample in family.samples:
                if sample.name == "dhash_http_requests_total":
                    labels = sample.labels
                    found[(labels["method"], labels["path"], labels["status"])] = sample.value
    return found


def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the services: started side by side, once for the module ---------------------------------


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    base = tmp_path_factory.mktemp("localenv")
    started = {
        "clean": spawn_service(migrated_db(base / "clean.sqlite3")),
        "faulty": spawn_service(
            migrated_db(base / "faulty.sqlite3"),
            version="2.0.0-bad",
            faults="error_rate=1,health_down=true",
        ),
    }
    try:
        for service in started.values():
            wait_until_answering(service)
        yield started
    finally:
        for service in started.values():
            stop_service(service)


@pytest.fixture(scope="module")
def service(services: dict[str, RunningService]) -> RunningService:
    return services["clean"]


@pytest.fixture(scope="module")
def faulty(services: dict[str, RunningService]) -> RunningService:
    return services["faulty"]


# -- the API -----------------------------------------------------------------------------------


def test_health_and_version(service: RunningService) -> None:
    health = httpx.get(service.url + "/health")
    assert (health.status_code, health.json()) == (
        200,
        {"status": "ok", "version": "1.0.0", "db": "ok"},
    )
    assert httpx.get(service.url + "/version").json() == {"version": "1.0.0"}


def test_a_known_image_gets_its_hash_and_can_be_read_and_deleted(service: RunningService) -> None:
    created = upload(service.url, png_of(KNOWN), "known.png")
    assert created.status_code == 201
    body = created.json()
    assert (body["hash"], body["width"], body["height"]) == (expected_dhash(KNOWN), 9, 8)

    item = httpx.get(f"{service.url}/hashes/{body['id']}")
    assert item.status_code == 200
    assert item.json()["hash"] == body["hash"]
    assert item.json()["filename"] == "known.png"

    assert httpx.delete(f"{service.url}/hashes/{body['id']}").status_code == 204
    assert httpx.get(f"{service.url}/hashes/{body['id']}").status_code == 404
    assert httpx.delete(f"{service.url}/hashes/{body['id']}").status_code == 404


def test_a_raw_body_is_an_upload_too(service: RunningService) -> None:
    response = httpx.post(
        service.url + "/hash", content=png_of(KNOWN), headers={"content-type": "image/png"}
    )
    assert response.status_code == 201
    assert response.json()["hash"] == expected_dhash(KNOWN)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"files": {"image": ("x.png", b"not an image \x00\x01", "image/png")}}, "decode"),
        ({"files": {"image": ("x.png", png_of(KNOWN)[:40], "image/png")}}, "decode"),
        ({"files": {"other": ("x.png", png_of(KNOWN), "image/png")}}, "'image'"),
        ({"content": b"garbage"}, "decode"),
        ({"content": b""}, "empty"),
    ],
    ids=["garbage form", "truncated png", "no image field", "garbage body", "empty body"],
)
def test_what_is_not_an_image_gets_a_400(
    service: RunningService, kwargs: dict[str, object], needle: str
) -> None:
    response = httpx.post(service.url + "/hash", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert needle in response.json()["error"]


def test_an_oversized_upload_gets_a_413(service: RunningService) -> None:
    response = httpx.post(service.url + "/hash", content=b"\0" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413


def test_search_finds_the_near_duplicate_and_not_the_different_image(
    service: RunningService,
) -> None:
    ids = {}
    for label, data in (
        ("original", scene(5)),
        ("near", scene(5, brighten=10)),
        ("different", scene(5, negative=True)),
    ):
        response = upload(service.url, data)
        assert response.status_code == 201
        ids[label] = response.json()["id"]
    original = httpx.get(f"{service.url}/hashes/{ids['original']}").json()["hash"]

    found = httpx.get(service.url + "/search", params={"hash": original, "max_distance": 8}).json()
    by_id = {match["id"]: match for match in found["matches"]}
    assert ids["original"] in by_id and by_id[ids["original"]]["distance"] == 0
    assert ids["near"] in by_id
    assert ids["different"] not in by_id
    distances = [match["distance"] for match in found["matches"]]
    assert distances == sorted(distances)
    assert set(found["matches"][0]) == {"id", "hash", "distance"}

    # by id: the image's near duplicates, itself left out
    by_item = httpx.get(service.url + "/search", params={"id": ids["original"], "max_distance": 8})
    item_ids = {match["id"] for match in by_item.json()["matches"]}
    assert ids["near"] in item_ids and ids["original"] not in item_ids


@pytest.mark.parametrize(
    "params",
    [{}, {"hash": "xyz"}, {"hash": "0" * 16, "max_distance": "65"}, {"hash": "0" * 16, "id": "1"}],
)
def test_bad_search_parameters_get_a_400(service: RunningService, params: dict[str, str]) -> None:
    assert httpx.get(service.url + "/search", params=params).status_code == 400


def test_metrics_count_requests_by_route_and_status(service: RunningService) -> None:
    before = counts(service.url)
    upload(service.url, png_of(KNOWN))
    upload(service.url, b"garbage")
    upload(service.url, b"more garbage")
    httpx.get(service.url + "/hashes/987654")
    after = counts(service.url)

    def delta(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta(("POST", "/hash", "201")) == 1
    assert delta(("POST", "/hash", "400")) == 2
    assert delta(("GET", "/hashes/{id}", "404")) == 1  # the template, not /hashes/987654
    assert not any("987654" in path for _, path, _ in after)

    text = httpx.get(service.url + "/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["dhash_http_request_duration_seconds"].type == "histogram"
    build = families["dhash_build_info"].samples[0]
    assert (build.labels, build.value) == ({"version": "1.0.0"}, 1.0)
    stored = families["dhash_hashes_stored"].samples[0].value
    assert stored >= 1
    assert "dhash_queue_pending" in families


def test_the_queue_is_worked_off(service: RunningService, tmp_path: Path) -> None:
    upload(service.url, png_of(KNOWN))

    def pending() -> float:
        text = httpx.get(service.url + "/metrics").text
        family = next(
            f for f in text_string_to_metric_families(text) if f.name == "dhash_queue_pending"
        )
        return float(family.samples[0].value)

    assert until(lambda: pending() == 0)


def test_a_backup_reads_the_database_while_the_service_writes(
    service: RunningService, tmp_path: Path
) -> None:
    with sqlite3.connect(service.db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with ThreadPoolExecutor(max_workers=4) as pool:
        uploads = [pool.submit(upload, service.url, scene(seed)) for seed in range(12)]
        copy = sqlite3.connect(tmp_path / "backup.sqlite3")
        with contextlib.closing(sqlite3.connect(service.db)) as source, contextlib.closing(copy):
            source.backup(copy, pages=1)  # page by page, interleaved with the writes
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [future.result().status_code for future in uploads] == [201] * 12


async def test_health_is_down_when_the_database_cannot_be_read(tmp_path: Path) -> None:
    db = migrated_db(tmp_path / "dhash.sqlite3")
    app = create_app(db, "1.0.0", FaultSpec())
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dhash") as client,
    ):
        assert (await client.get("/health")).status_code == 200
        with sqlite3.connect(db) as conn:
            conn.executescript("DROP TABLE processing_queue; DROP TABLE hashes;")
        health = await client.get("/health")
        assert health.status_code == 503
        assert (health.json()["status"], health.json()["db"]) == ("down", "error")


# -- faults --------------------------------------------------------------------------------------


def test_faults_from_the_command_line(faulty: RunningService) -> None:
    before = counts(faulty.url)
    assert upload(faulty.url, png_of(KNOWN)).status_code == 500
    assert httpx.get(faulty.url + "/search", params={"hash": "0" * 16}).status_code == 500
    health = httpx.get(faulty.url + "/health")
    assert (health.status_code, health.json()["status"]) == (503, "down")
    assert httpx.get(faulty.url + "/version").status_code == 200  # not an API route
    after = counts(faulty.url)
    key = ("POST", "/hash", "500")
    assert after.get(key, 0) - before.get(key, 0) == 1  # injected errors count like real ones


def test_faults_changed_at_run_time(service: RunningService) -> None:
    admin = service.url + "/admin/faults"
    assert httpx.get(admin).json()["active"] is False
    try:
        state = httpx.post(admin, json={"error_rate": 1.0}).json()
        assert (state["error_rate"], state["active"]) == (1.0, True)
        assert upload(service.url, png_of(KNOWN)).status_code == 500
        assert httpx.get(service.url + "/health").status_code == 200

        httpx.post(admin, json={"health_down": True})  # replaces the spec: errors are off
        assert httpx.get(service.url + "/health").status_code == 503
        assert upload(service.url, png_of(KNOWN)).status_code == 201

        httpx.post(admin, json={"latency_ms": 300})
        started = time.monotonic()
        assert httpx.get(service.url + "/search", params={"hash": "0" * 16}).status_code == 200
        assert time.monotonic() - started >= 0.3

        refused = httpx.post(admin, json={"error_rate": 2})
        assert refused.status_code == 422 and "error_rate" in refused.json()["error"]
        assert httpx.post(admin, json={"nonsense": 1}).status_code == 422
    finally:
        httpx.post(admin, json={})
    assert httpx.get(admin).json()["spec"] == ""
    assert upload(service.url, png_of(KNOWN)).status_code == 201


async def test_fault_admin_is_for_loopback_clients_only(tmp_path: Path) -> None:
    # In process: a real remote client would need an address of this machine's that is not
    # loopback, which test machines need not have. /admin/faults does not touch the database.
    app = create_app(tmp_path / "unused.sqlite3", "1.0.0", FaultSpec())

    def client(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://dhash")

    async with client("203.0.113.9") as remote:
        assert (await remote.get("/admin/faults")).status_code == 403
        assert (await remote.post("/admin/faults", json={"error_rate": 1})).status_code == 403
    async with client("127.0.0.1") as local:
        assert (await local.get("/admin/faults")).status_code == 200


def test_after_s_delays_the_faults_from_start_up(tmp_path: Path) -> None:
    db = migrated_db(tmp_path / "dhash.sqlite3")
    with running_service(db, faults="error_rate=1,after_s=1.0") as svc:
        state = httpx.get(svc.url + "/admin/faults").json()
        assert state["active"] is False or state["starts_in_s"] == 0
        if state["starts_in_s"] > 0.3:  # start-up left time to see the quiet phase
            assert upload(svc.url, png_of(KNOWN)).status_code == 201
        assert until(lambda: upload(svc.url, png_of(KNOWN)).status_code == 500, 5.0)
        assert httpx.get(svc.url + "/admin/faults").json()["active"] is True


# -- the process ---------------------------------------------------------------------------------


def test_sigterm_stops_it_promptly_with_status_0(tmp_path: Path) -> None:
    db = migrated_db(tmp_path / "dhash.sqlite3")
    with running_service(db) as svc:
        upload(svc.url, png_of(KNOWN))
        started = time.monotonic()
        code = stop_service(svc, timeout_s=5)
        assert code == 0
        assert time.monotonic() - started < 3
    assert "stopped" in svc.log_text()


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_it_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    half = tmp_path / "half.sqlite3"  # hashes, but no queue
    with sqlite3.connect(half) as conn:
        conn.execute(
            "CREATE TABLE hashes (id INTEGER PRIMARY KEY, hash TEXT, filename TEXT,"
            " width INTEGER, height INTEGER, created_at TEXT)"
        )
    missing = tmp_path / "missing.sqlite3"

    # side by side: each refusal costs an interpreter start-up
    runs = {
        db: subprocess.Popen(
            service_argv(db, free_port()), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for db in (empty, half, missing)
    }
    results = {db: (proc.wait(timeout=30), proc.communicate()[1]) for db, proc in runs.items()}
    assert results[empty][0] == 3 and "lacks table hashes" in results[empty][1]
    assert results[half][0] == 3 and "lacks table processing_queue" in results[half][1]
    assert results[missing][0] == 3 and "does not exist" in results[missing][1]
    assert not missing.exists()  # never created by the service


def test_it_runs_on_the_schema_before_the_queue_migration(tmp_path: Path) -> None:
    """Expand/contract: a rollback restores the older schema, and the service runs on it."""
    first_two = tmp_path / "first-two"
    first_two.mkdir()
    for migration in sorted((Path(__file__).parents[2] / "migrations").glob("*.sql"))[:2]:
        (first_two / migration.name).write_text(migration.read_text())
    db = migrated_db(tmp_path / "older.sqlite3", first_two)
    with running_service(db) as service:
        answer = upload(service.url, png_of(KNOWN))
        assert answer.status_code == 201, answer.text
        assert httpx.get(service.url + "/health").status_code == 200


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    db = migrated_db(tmp_path / "dhash.sqlite3")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        result = _run(service_argv(db, holder.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


# -- uploads, parsed -----------------------------------------------------------------------------


async def test_multipart_bodies_keep_binary_content_exactly() -> None:
    payload = bytes(range(256)) * 4 + b"\r\n\r\n--\r\n" + bytes(range(255, -1, -1))
    seen: list[Upload] = []

    async def echo(request: Request) -> Response:
        seen.append(await read_upload(request))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hash", echo, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        answer = await client.post(
            "/hash",
            data={"note": "first"},
            files={"image": ("a\x1b[2J.bin", payload, "application/octet-stream")},
        )
    assert answer.status_code == 204
    assert seen[0].data == payload
    assert seen[0].filename == "a[2J.bin"  # control characters dropped from the name


# -- the traffic generator -----------------------------------------------------------------------


async def test_traffic_keeps_its_rate_and_gets_answers(service: RunningService) -> None:
    generator = TrafficGenerator(service.url, rps=60, seed=1)
    await generator.start()
    await asyncio.sleep(0.5)  # the window the rate is measured over
    await generator.stop()
    assert 27 <= generator.sent <= 34  # 0.5 s at 60/s, the first at once: 31
    assert generator.ok == generator.sent and generator.failed == 0
    assert generator.by_status.get(201, 0) > 0
    assert sum(generator.by_status.values()) == generator.sent


async def test_traffic_counts_the_failures_of_a_faulty_service(faulty: RunningService) -> None:
    generator = TrafficGenerator(faulty.url, rps=30)
    await generator.start()
    started = time.monotonic()
    while generator.sent < 10 and time.monotonic() - started < 5:
        await asyncio.sleep(0.02)
    await generator.stop()
    assert generator.sent >= 10
    assert generator.failed == generator.sent and generator.ok == 0
    assert set(generator.by_status) == {500}


async def test_traffic_counts_network_errors_and_never_raises() -> None:
    generator = TrafficGenerator(f"http://127.0.0.1:{free_port()}", rps=50, timeout_s=1)
    await generator.start()
    started = time.monotonic()
    while generator.failed < 5 and time.monotonic() - started < 5:
        await asyncio.sleep(0.02)
    await generator.stop()
    assert generator.failed >= 5
    assert generator.network_errors == generator.failed and generator.by_status == {}


def test_traffic_from_the_command_line(service: RunningService) -> None:
    argv = [sys.executable, "-m", "dhash_console.localenv", "traffic"]
    argv += ["--url", service.url, "--rps", "20", "--seconds", "0.3"]
    result = _run(argv)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] >= 4 and summary["ok"] == summary["sent"]
