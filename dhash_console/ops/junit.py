"""Smoke results as JUnit XML, the format every CI system shows natively.

One <testsuite> per group (API, DB, end to end), one <testcase> per test, a <failure>
with its message for each failed test and <skipped> for what does not apply. Text is
escaped by ElementTree; characters XML 1.0 cannot hold at all are removed first.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from dhash_console.ops.smoke.report import GROUP_TITLES, SmokeReport, SmokeResult

# XML 1.0 allows tab, newline, carriage return and most of the rest; nothing else below 0x20.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _counts(results: list[SmokeResult]) -> dict[str, str]:
    return {
        "tests": str(len(results)),
        "failures": str(sum(r.status == "failed" for r in results)),
        "errors": "0",
        "skipped": str(sum(r.status == "skipped" for r in results)),
        "time": f"{sum(r.duration_s for r in results):.3f}",
    }


def junit_tree(report: SmokeReport) -> ET.ElementTree[ET.Element]:
    root = ET.Element(
        "testsuites",
        {"name": xml_text(f"dhash-console smoke ({report.env})"), **_counts(report.results)},
    )
    root.set("time", f"{report.duration_s:.3f}")
    timestamp = datetime.fromtimestamp(report.started_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    for group, title in GROUP_TITLES.items():
        results = report.group(group)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": f"smoke.{group}",
                "timestamp": timestamp,
                "hostname": xml_text(socket.gethostname()),
                **_counts(results),
            },
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (("group", title), ("env", report.env), ("base_url", report.base_url)):
            ET.SubElement(properties, "property", {"name": name, "value": xml_text(value)})
        for result in results:
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": f"smoke.{group}",
                    "name": xml_text(result.name),
                    "time": f"{result.duration_s:.3f}",
                },
            )
            detail = xml_text(result.detail)
            if result.status == "failed":
                attributes = {"message": detail, "type": "SmokeFailure"}
                failure = ET.SubElement(case, "failure", attributes)
                failure.text = f"{title} / {result.name}: {detail}"
            elif result.status == "skipped":
                ET.SubElement(case, "skipped", {"message": detail})
            elif detail:
                ET.SubElement(case, "system-out").text = detail
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: SmokeReport, path: Path) -> None:
    """Write the report as JUnit XML (UTF-8, with an XML declaration)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(report).write(path, encoding="utf-8", xml_declaration=True)
