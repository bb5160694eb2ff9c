"""JUnit XML from smoke results: parses, right counts, escaped text, failures with messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from dhash_console.ops.junit import write_junit
from dhash_console.ops.smoke import SmokeReport, SmokeResult


def sample_report() -> SmokeReport:
    hostile = 'answered 500: <html>&amp; "quoted" ]]> \x1b[31mred\x00 [bold]x[/bold]'
    return SmokeReport(
        env="local",
        base_url="http://127.0.0.1:8787",
        started_at=1_800_000_000.0,
        duration_s=0.75,
        results=[
            SmokeResult("api", "health", True, 0.01, "200, status ok"),
            SmokeResult("api", "hash_known_image", False, 0.02, hostile),
            SmokeResult("db", "reachable_read_only", True, 0.0, "skipped: postgresql", True),
            SmokeResult("db", "tables_and_indexes", False, 0.0, "missing table(s): hashes"),
            SmokeResult("e2e", "upload_images", True, 0.3, "3 images uploaded"),
        ],
    )


def test_junit_parses_with_a_suite_per_group_and_the_right_counts(tmp_path: Path) -> None:
    path = tmp_path / "out" / "smoke.xml"
    write_junit(sample_report(), path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("5", "2", "1")
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["smoke.api", "smoke.db", "smoke.e2e"]
    counts = {
        name: (s.get("tests"), s.get("failures"), s.get("skipped"), s.get("errors"))
        for name, s in suites.items()
    }
    assert counts == {
        "smoke.api": ("2", "1", "0", "0"),
        "smoke.db": ("2", "1", "1", "0"),
        "smoke.e2e": ("1", "0", "0", "0"),
    }
    cases = suites["smoke.db"].findall("testcase")
    assert [c.get("name") for c in cases] == ["reachable_read_only", "tables_and_indexes"]
    assert cases[0].find("skipped") is not None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "missing table(s): hashes"
    assert failure.text is not None and "tables_and_indexes" in failure.text
    assert suites["smoke.e2e"].findall("testcase")[0].find("failure") is None


def test_untrusted_detail_is_escaped_and_stripped_of_what_xml_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "smoke.xml"
    write_junit(sample_report(), path)
    raw = path.read_bytes()
    assert b"\x1b" not in raw and b"\x00" not in raw
    assert b"<html>" not in raw  # escaped, not markup
    root = ET.parse(path).getroot()
    failure = root.find("testsuite/testcase[@name='hash_known_image']/failure")
    assert failure is not None
    assert failure.get("message") == (
        'answered 500: <html>&amp; "quoted" ]]> [31mred [bold]x[/bold]'
    )
