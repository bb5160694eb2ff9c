"""Prometheus text exposition: the few series a gate needs, and the math on two scrapes.

`parse` reads only the lines of the metrics the gates ask for (a service's /metrics can hold
thousands of lines a gate never reads) and indexes their samples by name; then this module does
what PromQL would do with them: increase() over a counter with resets, and histogram_quantile()
over bucket increases.

The parser is a few regular expressions rather than `prometheus_client`'s parser, which walks
every label character by character in Python: at one scrape a second that walk was the largest
part of the console's CPU while watching (bench/bench_watch.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

LabelSet = frozenset[tuple[str, str]]

# name{labels} value [timestamp]; a label value may hold any character, escaped or not.
_SAMPLE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:[ \t]*\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r"[ \t]+([^ \t]+)(?:[ \t]+-?[0-9]+)?"
)
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(,|$)')
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"n": "\n"}
_DECLARATION = re.compile(r"#[ \t]+(?:HELP|TYPE)[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)")


class MalformedMetrics(ValueError):
    """The text is not the Prometheus exposition format."""


@dataclass(frozen=True)
class SampleIndex:
    """Samples of one scrape by sample name, and the family names that were declared."""

    samples: Mapping[str, list[tuple[dict[str, str], float]]]
    families: frozenset[str]

    def has(self, *names: str) -> bool:
        return any(name in self.samples or name in self.families for name in names)


def base_name(name: str) -> str:
    """The family name for a counter given with or without `_total`."""
    return name.removesuffix("_total")


def _wanted(line: str, prefixes: tuple[str, ...]) -> bool:
    if line.startswith(prefixes):
        return True
    # HELP and TYPE lines of the wanted metrics keep their families declared.
    return line.startswith(("# HELP ", "# TYPE ")) and line[7:].lstrip().startswith(prefixes)


def parse(text: str, prefixes: tuple[str, ...] | None = None) -> SampleIndex:
    """Index the samples of `text` (only the metrics whose names start with `prefixes`, when
    given). Raises MalformedMetrics for a line of a kept metric that is not the format."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    families: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if prefixes is not None and not _wanted(line, prefixes):
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            declared = _DECLARATION.match(line)
            if declared is not None:
                families.add(declared[1])
            continue
        name, labels, value = _sample(line, number)
        samples.setdefault(name, []).append((labels, value))
    return SampleIndex(samples=samples, families=frozenset(families))


def _sample(line: str, number: int) -> tuple[str, dict[str, str], float]:
    found = _SAMPLE.fullmatch(line)
    if found is None:
        raise MalformedMetrics(f"line {number}: not a sample: {line[:80]!r}")
    name, label_text, value_text = found.groups()
    labels: dict[str, str] = {}
    position = 0
    while label_text and position < len(label_text):
        label = _LABEL.match(label_text, position)
        if label is None:
            if not label_text[position:].strip():
                break
            raise MalformedMetrics(f"line {number}: bad labels: {line[:80]!r}")
        value = label[2]
        labels[label[1]] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
        position = label.end()
    if "_" in value_text:  # float() takes 1_000; the format does not
        raise MalformedMetrics(f"line {number}: bad value: {line[:80]!r}")
    try:
        return name, labels, float(value_text)
    except ValueError:
        raise MalformedMetrics(f"line {number}: bad value: {line[:80]!r}") from None


def _unescape(escape: re.Match[str]) -> str:
    return _UNESCAPED.get(escape[1], escape[1])


def label_key(labels: Mapping[str, str], drop: str | None = None) -> LabelSet:
    return frozenset((k, v) for k, v in labels.items() if k != drop)


@dataclass(frozen=True)
class CounterSeries:
    """A counter's value by label set, with its `_created` time when the exporter gives one."""

    values: Mapping[LabelSet, float]
    created: Mapping[LabelSet, float]


def counter_series(index: SampleIndex, counter: str) -> CounterSeries | None:
    """The series of `counter` (with or without `_total`); None when the scrape lacks it."""
    base = base_name(counter)
    names = (f"{base}_total", base)
    if not index.has(*names, counter):
        return None
    values: dict[LabelSet, float] = {}
    for name in names:
        for labels, value in index.samples.get(name, ()):
            values[label_key(labels)] = value
    created = {label_key(lb): v for lb, v in index.samples.get(f"{base}_created", ())}
    return CounterSeries(values=values, created=created)


@dataclass(frozen=True)
class LabelMatchers:
    """PromQL's `label=~"re"` (match) and `label!~"re"` (exclude), anchored at both ends; a
    missing label is the empty string."""

    match: tuple[tuple[str, re.Pattern[str]], ...] = ()
    exclude: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def of(cls, match: Mapping[str, str], exclude: Mapping[str, str]) -> LabelMatchers:
        return cls(
            tuple((label, re.compile(pattern)) for label, pattern in match.items()),
            tuple((label, re.compile(pattern)) for label, pattern in exclude.items()),
        )

    def __bool__(self) -> bool:
        return bool(self.match or self.exclude)

    def keeps(self, key: LabelSet) -> bool:
        labels = dict(key)
        return all(p.fullmatch(labels.get(name, "")) for name, p in self.match) and not any(
            p.fullmatch(labels.get(name, "")) for name, p in self.exclude
        )

    def describe(self) -> str:
        """`path!~"/health|/metrics"`, as PromQL would write it."""
        parts = [f'{name}=~"{p.pattern}"' for name, p in self.match]
        parts += [f'{name}!~"{p.pattern}"' for name, p in self.exclude]
        return ",".join(parts)


def select(series: CounterSeries, matchers: LabelMatchers) -> CounterSeries:
    """Only the series `matchers` keep (a histogram's `_created` is keyed without `le`)."""
    if not matchers:
        return series
    return CounterSeries(
        values={key: v for key, v in series.values.items() if matchers.keeps(key)},
        created={key: v for key, v in series.created.items() if matchers.keeps(key)},
    )


def _reset(
    key: LabelSet, now: CounterSeries, before: CounterSeries, now_value: float, old: float
) -> bool:
    if now_value < old:
        return True
    # A changed creation time means the process restarted, even if it already counted past
    # the old value.
    created_now, created_before = now.created.get(key), before.created.get(key)
    return created_now is not None and created_before is not None and created_now != created_before


def increases(now: CounterSeries, before: CounterSeries) -> dict[LabelSet, float]:
    """Per series, how much it grew; a reset counts the new value from zero, as rate() does.

    A series that appeared since `before` grew by its whole value; one that vanished is left
    out (its process is gone, nothing new was counted by it).
    """
    grown: dict[LabelSet, float] = {}
    for key, value in now.values.items():
        old = before.values.get(key)
        if old is None or _reset(key, now, before, value, old):
            grown[key] = value
        else:
            grown[key] = value - old
    return grown


def error_ratio(
    grown: Mapping[LabelSet, float], label: str, match: re.Pattern[str]
) -> tuple[float, float]:
    """(errors, total) of a counter's increases; errors are the series whose `label`
    fullmatches `match` (a series without the label is not an error)."""
    total = math.fsum(grown.values())
    failed = math.fsum(
        value
        for key, value in grown.items()
        if any(k == label and match.fullmatch(v) for k, v in key)
    )
    return failed, total


def histogram_series(index: SampleIndex, histogram: str) -> CounterSeries | None:
    """The `_bucket` series of `histogram`; None when the scrape lacks it.

    A reset of any bucket of a series group (its labels but `le`) resets the whole group, so
    that a restart never leaves half the buckets counted from zero and half as a difference.
    """
    name = f"{histogram}_bucket"
    if not index.has(name, histogram):
        return None
    values = {label_key(lb): v for lb, v in index.samples.get(name, ())}
    created = {label_key(lb): v for lb, v in index.samples.get(f"{histogram}_created", ())}
    return CounterSeries(values=values, created=created)


def bucket_increases(now: CounterSeries, before: CounterSeries) -> dict[float, float]:
    """Increase of each cumulative bucket since `before`, summed over the series by `le`."""
    reset_groups: set[LabelSet] = set()
    for key, value in now.values.items():
        group = frozenset(kv for kv in key if kv[0] != "le")
        old = before.values.get(key)
        if old is not None and value < old:
            reset_groups.add(group)
        created_now = now.created.get(group)
        created_before = before.created.get(group)
        if created_now is not None and created_before is not None and created_now != created_before:
            reset_groups.add(group)
    buckets: dict[float, float] = {}
    for key, value in now.values.items():
        labels = dict(key)
        try:
            upper = float(labels["le"])
        except (KeyError, ValueError):
            continue
        group = frozenset(kv for kv in key if kv[0] != "le")
        old = before.values.get(key)
        grown = value if old is None or group in reset_groups else value - old
        buckets[upper] = buckets.get(upper, 0.0) + grown
    return buckets


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float:
    """PromQL's histogram_quantile over cumulative buckets (upper bound -> count).

    NaN when there is no +Inf bucket, fewer than two buckets, or no observations; linear
    interpolation inside the bucket holding the rank; the highest finite bound when the rank
    falls in the +Inf bucket; the first bound when it is <= 0 and holds the rank.
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets.items())
    if len(ordered) < 2 or ordered[-1][0] != math.inf:
        return math.nan
    # Cumulative counts can come out non-monotonic from scrape races; PromQL evens them out.
    bounds = [b for b, _ in ordered]
    counts: list[float] = []
    highest = 0.0
    for _, count in ordered:
        highest = max(highest, count)
        counts.append(highest)
    observations = counts[-1]
    if observations <= 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def gauge_sum(index: SampleIndex, metric: str, labels: Mapping[str, str]) -> float | None:
    """Sum of the samples of `metric` whose labels include `labels`; None when none match."""
    matched = [
        value
        for sample_labels, value in index.samples.get(metric, ())
        if all(sample_labels.get(k) == v for k, v in labels.items())
    ]
    return math.fsum(matched) if matched else None
