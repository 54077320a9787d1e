"""A small model of how CloudWatch evaluates a metric alarm, for tests that replay a failure.

What it follows (CloudWatch user guide, "Using Amazon CloudWatch alarms": "Evaluating an alarm",
"Configuring how CloudWatch alarms treat missing data", "Metric math syntax and functions"):
- the alarm looks at the last `evaluationPeriods` datapoints and goes to ALARM when at least
  `datapointsToAlarm` of them breach;
- a missing datapoint counts as breaching with `breaching`, as good with `notBreaching`, and is
  skipped with `missing`/`ignore` (all missing: INSUFFICIENT_DATA);
- metric math: the returned expression is computed per period from the queries' datapoints; a
  query without a datapoint in a period is missing there, `FILL(m, v)` replaces that by v, and
  `IF(c, a, b)` is a if c is non-zero else b.

Datapoints are given already aggregated by the alarm's statistic, one per period, oldest first;
None is a period without data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

Series = Sequence[float | None]

_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


def _expression_series(expression: str, data: dict[str, Series]) -> list[float | None]:
    if not re.fullmatch(r"[\w\s().,*/+<>=!-]+", expression):
        raise ValueError(f"unsupported expression {expression!r}")
    python = re.sub(r"\bIF\(", "_if(", re.sub(r"\bFILL\(", "_fill(", expression))
    periods = len(next(iter(data.values())))
    values: list[float | None] = []
    for period in range(periods):
        scope: dict[str, Any] = {key: series[period] for key, series in data.items()}
        scope["_fill"] = lambda value, default: default if value is None else value
        scope["_if"] = lambda condition, then, otherwise: then if condition else otherwise
        try:
            values.append(eval(python, {"__builtins__": {}}, scope))  # the expression is our own text
        except (TypeError, ZeroDivisionError):
            values.append(None)  # arithmetic on a missing datapoint, or nothing to divide by
    return values


def alarm_series(alarm: dict[str, Any], data: dict[str, Series] | Series) -> list[float | None]:
    """The series the alarm compares: its one metric, or its returned math expression."""
    queries = alarm.get("metricQueries")
    if not queries:
        return list(data)  # type: ignore[arg-type]
    assert isinstance(data, dict)
    returned = [query for query in queries if query.get("returnData")]
    assert len(returned) == 1, "an alarm returns exactly one series"
    return _expression_series(returned[0]["expression"], data)


def evaluate(alarm: dict[str, Any], data: dict[str, Series] | Series) -> str:
    """ALARM, OK or INSUFFICIENT_DATA for the recorded alarm inputs `alarm` (camelCase)."""
    series = alarm_series(alarm, data)
    periods = int(alarm["evaluationPeriods"])
    to_alarm = int(alarm.get("datapointsToAlarm") or periods)
    window = series[-periods:]
    assert len(window) == periods, f"give at least {periods} datapoints"
    compare = _COMPARE[alarm["comparisonOperator"]]
    treat = alarm.get("treatMissingData", "missing")
    breaching = 0
    present = 0
    for value in window:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if treat == "breaching":
                breaching += 1
                present += 1
            elif treat == "notBreaching":
                present += 1
            continue
        present += 1
        breaching += compare(value, float(alarm["threshold"]))
    if present == 0:
        return "INSUFFICIENT_DATA"
    return "ALARM" if breaching >= to_alarm else "OK"
