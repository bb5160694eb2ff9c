"""Post-deployment smoke tests (the seed's `smoke_tests.sh`): API, DB and end to end.

`run_smoke` runs the three groups against one environment, each test under its own
timeout, and hands every result to `on_result` as it comes (the engine journals them).
"""

from dhash_console.ops.smoke.report import GROUP_TITLES, SmokeReport, SmokeResult
from dhash_console.ops.smoke.runner import run_smoke

__all__ = ["GROUP_TITLES", "SmokeReport", "SmokeResult", "run_smoke"]
