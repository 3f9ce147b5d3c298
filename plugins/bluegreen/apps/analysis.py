"""The ``analysis`` of an app config: Prometheus checks that judge the new color by its metrics,
before the switch (the new color alone) and during the soak (under real traffic).

    analysis:
      connection_id: prometheus_default   # an Airflow connection: the server's URL, its auth and CA
      before_switch: 30s                  # analyse the new color this long before traffic moves (0: not)
      during_soak: true                   # and at every check's interval through the soak
      unreachable: wait                   # Prometheus unreachable: wait (up to timeout) | fail
      timeout: 5m                         # how long no data ("wait") or no Prometheus holds a phase past its end
      checks:
        - name: error-rate
          query: sum(rate(http_requests_total{deployment="{deployment}",code=~"5.."}[1m]))
                 / sum(rate(http_requests_total{deployment="{deployment}"}[1m]))
          condition: "< 0.01"
          interval: 10s
          initial_delay: 30s              # first measurement this long into a phase (default: one interval)
          failure_limit: 0                # failed measurements tolerated
          no_data: fail                   # fail | pass | wait

The query is PromQL, sent to Prometheus as written except for the release's placeholders
(``{color}`` ...), which are replaced by quoted-string-safe values.  PromQL itself is not parsed
here: Prometheus judges it, when the plan step asks it once before anything in a cluster changes.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

PLACEHOLDERS = ("color", "deployment", "namespace", "service", "app", "image")
# ``{name}`` where name is a bare word: a placeholder (PromQL's own braces always hold a matcher).
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
NO_DATA_RULES = ("fail", "pass", "wait")
UNREACHABLE_RULES = ("wait", "fail")
CHECK_FIELDS = ("name", "query", "condition", "interval", "initial_delay", "failure_limit", "no_data")
ANALYSIS_FIELDS = ("connection_id", "before_switch", "during_soak", "unreachable", "timeout", "checks")


@dataclass(frozen=True)
class Check:
    name: str
    query: str
    condition: str  # "< 0.01"
    interval: float = 10.0
    failure_limit: int = 0
    no_data: str = "fail"
    # How long into a phase the first measurement waits (None: one interval).  A new color's pods
    # reach Prometheus only once its service discovery has seen them (it passes on changes at
    # most every 5 s) and a rate needs two scrapes of them.
    initial_delay: float | None = None

    @property
    def first_after(self) -> float:
        return self.interval if self.initial_delay is None else self.initial_delay

    def render(self, values: dict[str, str]) -> str:
        """The query with the release's placeholders filled in, each escaped for a PromQL string."""
        return _PLACEHOLDER.sub(lambda m: _promql_escape(values[m.group(1)]), self.query)

    def passes(self, value: float) -> bool:
        op, threshold = _split_condition(self.condition)
        return _OPERATORS[op](value, threshold)


@dataclass(frozen=True)
class Analysis:
    connection_id: str
    checks: tuple[Check, ...]
    before_switch: float = 0.0
    during_soak: bool = True
    unreachable: str = "wait"
    timeout: float = 300.0

    @classmethod
    def from_json(cls, data: dict) -> Analysis:
        return cls(**{**data, "checks": tuple(Check(**c) for c in data["checks"])})


def _promql_escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _split_condition(condition: str) -> tuple[str, float]:
    match = _CONDITION.match(condition)
    if not match:
        raise ValueError(condition)
    return match.group(1), float(match.group(2))


def load_analysis(v) -> Analysis | None:
    """``analysis`` of a config (``v``: apps.config._Validator), or None when it has none."""
    raw = v.raw.get("analysis")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        v.fail("analysis", raw, "must be a mapping with connection_id and checks")
    for key in raw:
        if key not in ANALYSIS_FIELDS:
            v.fail(f"analysis.{key}", raw[key], f"unknown field (known: {', '.join(ANALYSIS_FIELDS)})")
    sub = type(v)(raw, v.source, prefix="analysis.")
    checks_raw = raw.get("checks")
    if not isinstance(checks_raw, list) or not checks_raw:
        v.fail("analysis.checks", checks_raw, "must be a list of at least one check (name, query, condition)")
    checks, names = [], set()
    for i, item in enumerate(checks_raw):
        check = _load_check(v, i, item)
        if check.name in names:
            v.fail(f"analysis.checks[{i}].name", check.name, "is the name of another check")
        names.add(check.name)
        checks.append(check)
    analysis = Analysis(
        connection_id=sub.string("connection_id"),
        checks=tuple(checks),
        before_switch=sub.duration("before_switch", default="0s", minimum=0),
        during_soak=sub.boolean("during_soak", default=True),
        unreachable=sub.choice("unreachable", UNREACHABLE_RULES, default="wait"),
        timeout=sub.duration("timeout", default="5m", minimum=0),
    )
    if analysis.before_switch == 0 and not analysis.during_soak:
        v.fail("analysis.during_soak", False, "with before_switch 0 too, no check would ever run")
    return analysis


def _load_check(v, i: int, item) -> Check:
    where = f"analysis.checks[{i}]"
    if not isinstance(item, dict):
        v.fail(where, item, "must be a mapping with name, query and condition")
    for key in item:
        if key not in CHECK_FIELDS:
            v.fail(f"{where}.{key}", item[key], f"unknown field (known: {', '.join(CHECK_FIELDS)})")
    sub = type(v)(item, v.source, prefix=f"{where}.")
    name = sub.string("name")
    query = sub.string("query").strip()
    for match in _PLACEHOLDER.finditer(query):
        if match.group(1) not in PLACEHOLDERS:
            v.fail(
                f"{where}.query",
                query,
                f"unknown placeholder {match.group(0)} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
            )
    if query.count("(") != query.count(")") or query.count("{") != query.count("}"):
        v.fail(f"{where}.query", query, "has unbalanced brackets")
    condition = sub.string("condition")
    try:
        _, threshold = _split_condition(condition)
    except ValueError:
        v.fail(f"{where}.condition", condition, "must be a comparison with a number, e.g. '< 0.01' or '>= 0.99'")
    if not math.isfinite(threshold):
        v.fail(f"{where}.condition", condition, "must compare with a finite number")
    return Check(
        name=name,
        query=query,
        condition=condition.strip(),
        interval=sub.duration("interval", default="10s", minimum=0.5),
        initial_delay=sub.duration("initial_delay", default=None, minimum=0),
        failure_limit=sub.integer("failure_limit", default=0, minimum=0),
        no_data=sub.choice("no_data", NO_DATA_RULES, default="fail"),
    )
