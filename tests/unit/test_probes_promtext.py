"""The PromQL math the metrics gates do on two scrapes: increase() and histogram_quantile()."""

from __future__ import annotations

import math
import re

import pytest

from dhash_console.ops.probes import promtext
from dhash_console.ops.probes.promtext import CounterSeries, histogram_quantile

INF = math.inf


def series(text: str, counter: str = "reqs_total") -> CounterSeries:
    found = promtext.counter_series(promtext.parse(text), counter)
    assert found is not None
    return found


# --- histogram_quantile, as PromQL computes it ----------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.0, 0.0),  # rank 0: the start of the first bucket
        (0.25, 0.1),  # rank 2: the top of (0, 0.1]
        (0.5, 0.15),  # rank 4: halfway through (0.1, 0.2], which holds 4
        (0.75, 0.2),  # rank 6: the top of (0.1, 0.2]
        (0.8, 0.32),  # rank 6.4: 0.4 of the one observation in (0.2, 0.5]
        (1.0, 1.0),  # rank 8: the top of (0.5, 1]
    ],
)
def test_quantile_interpolates_linearly(q: float, expected: float) -> None:
    buckets = {0.1: 2.0, 0.2: 6.0, 0.5: 7.0, 1.0: 8.0, INF: 8.0}
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_quantile_known_values() -> None:
    # 100 observations spread 50 / 40 / 10 over (0, 0.1], (0.1, 0.5], (0.5, 1]
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, INF: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.1 + 0.4 * 20 / 40)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.95)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.9, {0.1: 1.0, 0.5: 2.0, INF: 10.0}) == 0.5


def test_quantile_with_a_non_positive_first_bound() -> None:
    assert histogram_quantile(0.1, {-1.0: 5.0, 0.0: 8.0, INF: 10.0}) == -1.0


@pytest.mark.parametrize(
    "buckets",
    [
        {0.1: 1.0, 0.5: 2.0},  # no +Inf bucket
        {INF: 5.0},  # fewer than two buckets
        {0.1: 0.0, INF: 0.0},  # no observations
        {},
    ],
)
def test_quantile_without_an_answer_is_nan(buckets: dict[float, float]) -> None:
    assert math.isnan(histogram_quantile(0.5, buckets))


def test_quantile_evens_out_non_monotonic_buckets() -> None:
    # a scrape race left le=0.5 below le=0.1; PromQL treats it as equal to its predecessor
    assert histogram_quantile(0.5, {0.1: 6.0, 0.5: 4.0, 1.0: 10.0, INF: 10.0}) == (
        pytest.approx(0.1 * 5 / 6)
    )


# --- counters: increases with resets ------------------------------------------------------


def test_increase_handles_new_series_and_resets() -> None:
    before = series('reqs_total{s="200"} 10\nreqs_total{s="500"} 5\nreqs_total{s="404"} 1\n')
    now = series('reqs_total{s="200"} 15\nreqs_total{s="500"} 2\nreqs_total{s="503"} 3\n')
    grown = {dict(k)["s"]: v for k, v in promtext.increases(now, before).items()}
    assert grown == {"200": 5.0, "500": 2.0, "503": 3.0}  # 500 reset; 503 new; 404 gone


def test_error_ratio_matches_the_label_in_full() -> None:
    text = 'reqs_total{status="500"} 2\nreqs_total{status="1500"} 3\nreqs_total{p="x"} 5\n'
    empty = CounterSeries({}, {})
    grown = promtext.increases(series(text), empty)
    assert promtext.error_ratio(grown, "status", re.compile("5..")) == (2.0, 10.0)


def test_counter_named_with_or_without_total() -> None:
    typed = "# TYPE reqs counter\nreqs_total 4\n"
    untyped = "reqs_total 4\n"
    for text in (typed, untyped):
        for name in ("reqs", "reqs_total"):
            assert list(series(text, name).values.values()) == [4.0]


def test_declared_counter_without_samples_is_present_and_empty() -> None:
    index = promtext.parse("# HELP reqs_total Requests.\n# TYPE reqs_total counter\n")
    found = promtext.counter_series(index, "reqs_total")
    assert found is not None and not found.values
    assert promtext.counter_series(index, "other_total") is None


def test_bucket_increases_reset_the_whole_group() -> None:
    def hist(a: float, b: float, inf: float, job: str = "x") -> str:
        return (
            f'h_bucket{{job="{job}",le="0.1"}} {a}\n'
            f'h_bucket{{job="{job}",le="1"}} {b}\n'
            f'h_bucket{{job="{job}",le="+Inf"}} {inf}\n'
        )

    def buckets(text: str) -> CounterSeries:
        found = promtext.histogram_series(promtext.parse(text), "h")
        assert found is not None
        return found

    before = buckets(hist(5, 9, 9) + hist(1, 1, 1, job="y"))
    now = buckets(hist(2, 9, 12) + hist(2, 3, 3, job="y"))  # job x restarted (0.1 went down)
    assert promtext.bucket_increases(now, before) == {0.1: 2.0 + 1, 1.0: 9.0 + 2, INF: 12.0 + 2}


# --- parsing only what a gate reads -------------------------------------------------------


def test_parse_reads_only_the_wanted_metrics() -> None:
    text = (
        "# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total 1\n"
        "# HELP reqs_total Requests.\n# TYPE reqs_total counter\n"
        'reqs_total{status="200"} 3\nreqs_created{status="200"} 1.5e9\n'
        "broken line that would not parse {\n"
    )
    index = promtext.parse(text, ("reqs",))
    assert set(index.samples) == {"reqs_total", "reqs_created"}
    assert index.families == {"reqs_total"}


def test_parse_reads_the_exposition_format() -> None:
    text = (
        "# a comment\n\n"
        'a{x="q\\"uote\\\\back\\nline",y="}{, "} 1.5 1700000000000\n'
        'a{ z = "1" , } -Inf\n'
        "b NaN\n"
        "c{} +Inf\n"
    )
    index = promtext.parse(text)
    assert index.samples["a"] == [
        ({"x": 'q"uote\\back\nline', "y": "}{, "}, 1.5),
        ({"z": "1"}, -INF),
    ]
    assert math.isnan(index.samples["b"][0][1])
    assert index.samples["c"] == [({}, INF)]


@pytest.mark.parametrize(
    "line",
    [
        'reqs_total{status="200" 3',  # unclosed labels
        'reqs_total{status="200" code="1"} 3',  # no comma between labels
        "reqs_total{status=200} 3",  # unquoted label value
        "reqs_total",  # no value
        "reqs_total 1_000",  # not a number in the format
        "reqs_total three",
    ],
)
def test_malformed_lines_raise_malformed_metrics(line: str) -> None:
    with pytest.raises(promtext.MalformedMetrics):
        promtext.parse(line + "\n")


def test_malformed_text_raises_malformed_metrics() -> None:
    with pytest.raises(promtext.MalformedMetrics):
        promtext.parse('reqs_total{status="200" 3\n')


def test_gauge_sum_of_matching_series() -> None:
    index = promtext.parse('g{a="1",b="x"} 2\ng{a="1",b="y"} 3\ng{a="2"} 10\n')
    assert promtext.gauge_sum(index, "g", {"a": "1"}) == 5
    assert promtext.gauge_sum(index, "g", {}) == 15
    assert promtext.gauge_sum(index, "g", {"a": "3"}) is None
    assert promtext.gauge_sum(index, "nope", {}) is None
