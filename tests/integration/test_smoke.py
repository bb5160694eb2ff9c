"""Smoke tests against the real reference service: healthy, faulty, unmigrated, drifted, slow."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from dhash_console.config import ResolvedEnvironment, parse_config, resolve_environment
from dhash_console.localenv.dhash import dhash_bytes, dhash_image, hamming, to_hex
from dhash_console.ops.smoke import SmokeResult, run_smoke
from dhash_console.ops.smoke.images import KNOWN_DHASH, KNOWN_PNG, near_duplicate_set
from tests.conftest import REPO
from tests.integration.localenv_helpers import (
    MIGRATIONS,
    RunningService,
    migrated_db,
    running_service,
)

API = ["health", "version", "hash_known_image", "malformed_upload_rejected"]
DB = [
    "reachable_read_only",
    "schema_at_latest_migration",
    "no_migration_drift",
    "tables_and_indexes",
]
E2E = ["upload_images", "search_finds_near_duplicate", "cleanup"]


def migrate_for_real(db: Path, migrations: Path = MIGRATIONS) -> Path:
    """Through the console's migrator, so schema_migrations records what was applied."""
    from dhash_console.ops.migrate import apply_migrations_sync

    db.parent.mkdir(parents=True, exist_ok=True)
    apply_migrations_sync(db, migrations)
    return db


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, Path]]:
    db = migrate_for_real(tmp_path_factory.mktemp("healthy") / "dhash.sqlite3")
    with running_service(db) as service:
        yield service, db


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, Path]]:
    """The service on tables made by hand: it runs, but no migrator recorded them."""
    db = migrated_db(tmp_path_factory.mktemp("bare") / "dhash.sqlite3")
    with running_service(db) as service:
        yield service, db


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningService, Path]]:
    db = migrate_for_real(tmp_path_factory.mktemp("faulty") / "dhash.sqlite3")
    with running_service(db, faults="error_rate=1") as service:
        yield service, db


@pytest.fixture
def write_config(tmp_path: Path, shipped_config_data: dict[str, Any]) -> Callable[..., Path]:
    """A config whose local environment is the given service, database and migrations."""

    def make(base_url: str, db: Path, migrations: Path = MIGRATIONS) -> Path:
        data = copy.deepcopy(shipped_config_data)
        data["environments"]["local"]["base_url"] = base_url
        data["environments"]["local"]["database"] = "sqlite:///" + db.resolve().as_posix()
        data["migrations"] = str(migrations)
        path = tmp_path / "quality-gates-config.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    return make


def environment(
    data: dict[str, Any], base_url: str, db: Path, migrations: Path
) -> ResolvedEnvironment:
    data = copy.deepcopy(data)
    data["environments"]["local"]["base_url"] = base_url
    data["environments"]["local"]["database"] = "sqlite:///" + db.resolve().as_posix()
    data["migrations"] = str(migrations)
    return resolve_environment(
        parse_config(data), "local", config_dir=REPO, state_dir=db.parent / "state"
    )


def smoke_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dhash_console", "--config", str(config), "smoke", "--env", "local",
         *args],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=90,
    )  # fmt: skip


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def hash_count(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM hashes").fetchone()[0])


def test_the_known_hash_is_what_the_service_algorithm_gives() -> None:
    """Worked out from the pixels in the smoke code; the service's own code agrees."""
    assert to_hex(dhash_bytes(KNOWN_PNG)) == KNOWN_DHASH
    for seed in range(20):
        original, near, different = (
            dhash_image(Image.open(io.BytesIO(data))) for data in near_duplicate_set(seed)
        )
        assert hamming(original, near) <= 2
        assert hamming(original, different) >= 60


def test_passes_against_a_healthy_service_and_cleans_up(
    healthy: tuple[RunningService, Path], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    service, db = healthy
    before = hash_count(db)
    junit = tmp_path / "reports" / "smoke.xml"
    result = smoke_cli(write_config(service.url, db), "--json", "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = json_lines(result.stdout)
    results = [line for line in lines if line["type"] == "smoke_result"]
    assert [(r["group"], r["name"]) for r in results] == (
        [("api", n) for n in API] + [("db", n) for n in DB] + [("e2e", n) for n in E2E]
    )
    assert all(r["ok"] and r["status"] == "passed" for r in results), results
    assert all(r["duration_s"] >= 0 for r in results)
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["ok"] is True
    assert (summary["tests"], summary["failed"]) == (11, 0)
    assert hash_count(db) == before  # what it wrote, it deleted
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("11", "0")
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "smoke.api",
        "smoke.db",
        "smoke.e2e",
    ]


def test_human_summary_names_groups(
    healthy: tuple[RunningService, Path], write_config: Callable[..., Path]
) -> None:
    service, db = healthy
    result = smoke_cli(write_config(service.url, db))
    assert result.returncode == 0, result.stdout + result.stderr
    for text in ("API", "DB", "End to end", "all smoke tests passed", "api/health"):
        assert text in result.stdout


def test_a_failing_service_fails_the_api_and_end_to_end_groups(
    faulty: tuple[RunningService, Path], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    service, db = faulty
    junit = tmp_path / "smoke.xml"
    result = smoke_cli(write_config(service.url, db), "--junit", str(junit))
    assert result.returncode == 1, result.stdout + result.stderr
    for name in ("api/hash_known_image", "api/malformed_upload_rejected", "e2e/upload_images"):
        assert f"failed: {name}:" in result.stdout
    assert "answered 500" in result.stdout
    assert "failed: db/" not in result.stdout  # the database itself is fine
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["smoke.db"].get("failures") == "0"
    assert int(suites["smoke.api"].get("failures") or 0) >= 2
    assert int(suites["smoke.e2e"].get("failures") or 0) >= 1
    failure = root.find("testsuite/testcase[@name='upload_images']/failure")
    assert failure is not None and "500" in (failure.get("message") or "")


async def test_an_unmigrated_database_fails_the_db_group_only(
    bare: tuple[RunningService, Path], shipped_config_data: dict[str, Any]
) -> None:
    service, db = bare  # the tables are there, but no migrator recorded them
    env = environment(shipped_config_data, service.url, db, MIGRATIONS)
    async with httpx.AsyncClient() as client:
        report = await run_smoke(env, client, timeout_s=10)
    failed = {r.name: r.detail for r in report.failed}
    assert set(failed) <= set(DB) and "schema_at_latest_migration" in failed, failed
    assert "schema_migrations" in failed["tables_and_indexes"]
    if importlib.util.find_spec("dhash_console.ops.migrate") is not None:
        assert "not applied" in failed["schema_at_latest_migration"]
    assert all(r.ok for r in report.group("api") + report.group("e2e"))


async def test_a_missing_database_is_not_created_by_the_read_only_check(
    bare: tuple[RunningService, Path],
    shipped_config_data: dict[str, Any],
    tmp_path: Path,
) -> None:
    service, _ = bare
    missing = tmp_path / "nowhere.sqlite3"
    env = environment(shipped_config_data, service.url, missing, MIGRATIONS)
    async with httpx.AsyncClient() as client:
        report = await run_smoke(env, client, timeout_s=10)
    db_results = {r.name: r for r in report.group("db")}
    assert not db_results["reachable_read_only"].ok
    assert all(db_results[name].detail == "not run: reachable_read_only failed" for name in DB[1:])
    assert not missing.exists()
    assert all(r.ok for r in report.group("api") + report.group("e2e"))


async def test_a_drifted_migration_fails_the_db_group(
    healthy: tuple[RunningService, Path],
    shipped_config_data: dict[str, Any],
    tmp_path: Path,
) -> None:
    service, _ = healthy
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, migrations)
    db = migrate_for_real(tmp_path / "drift.sqlite3", migrations)
    first = sorted(migrations.glob("*.sql"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n-- edited after it was applied\n")
    env = environment(shipped_config_data, service.url, db, migrations)
    seen: list[SmokeResult] = []

    async def on_result(result: SmokeResult) -> None:
        seen.append(result)

    async with httpx.AsyncClient() as client:
        report = await run_smoke(env, client, timeout_s=10, on_result=on_result)
    assert seen == report.results  # each result reported as it came
    failed = {r.name: r.detail for r in report.failed}
    assert list(failed) == ["no_migration_drift"], failed
    assert first.name.removesuffix(".sql") in failed["no_migration_drift"]


async def test_each_test_has_its_own_timeout(
    shipped_config_data: dict[str, Any], tmp_path: Path
) -> None:
    db = migrated_db(tmp_path / "slow.sqlite3")
    with running_service(db, faults="latency_ms=1500") as service:
        env = environment(shipped_config_data, service.url, db, MIGRATIONS)
        async with httpx.AsyncClient() as client:
            report = await run_smoke(env, client, timeout_s=0.4)
    upload = next(r for r in report.results if r.name == "hash_known_image")
    assert not upload.ok and upload.detail == "timed out after 0.4s"
    assert upload.duration_s < 1.4  # not the full latency
    assert report.group("db")[0].ok  # no HTTP there: not slowed
    assert not any("timed out" in r.detail for r in report.group("db"))
