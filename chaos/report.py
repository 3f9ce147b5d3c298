"""The report: per fault kind, how many runs had it, their invariant violations (must be 0) and
how each run ended; then every violation and harness error with its seed (to replay it), the
refusals' reasons, and the last line ``chaos: N runs, V invariant violations, seed S``."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from .scenario import ALL_KINDS

ENDINGS = ["released", "rolled back", "refused", "failed"]


def reason_class(text: str) -> str:
    """A refusal's reason without the run-specific parts (run ids, times, names)."""
    text = re.sub(r"run \S+", "run …", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "…", text)
    return text[:110]


def render(results, seed: int, wall: float | None = None) -> str:
    rows = defaultdict(lambda: {"runs": 0, "violations": 0, "errors": 0, **{e: 0 for e in ENDINGS}})
    for r in results:
        for kind in r.scenario.kinds + ["all", f"driver:{r.scenario.driver}", f"platform:{r.scenario.platform}"]:
            row = rows[kind]
            row["runs"] += 1
            row["violations"] += len(r.violations)
            if r.error:
                row["errors"] += 1
            elif r.outcome in ENDINGS:
                row[r.outcome] += 1
    kinds = [k for k in ALL_KINDS if k in rows]
    groups = [k for k in sorted(rows) if ":" in k]
    head = (
        f"{'fault kind':<22}{'runs':>6}{'violations':>12}{'released':>10}{'rolled back':>13}{'refused':>9}"
        f"{'failed':>8}{'errors':>8}"
    )
    rule = "-" * len(head)

    def line(kind):
        row = rows[kind]
        return (
            f"{kind:<22}{row['runs']:>6}{row['violations']:>12}{row['released']:>10}{row['rolled back']:>13}"
            f"{row['refused']:>9}{row['failed']:>8}{row['errors']:>8}"
        )

    lines = ["", head, rule, *map(line, kinds), rule, *map(line, groups), rule, line("all")]

    refusals = Counter(reason_class(r.reason) for r in results if r.outcome == "refused")
    if refusals:
        lines += ["", "refused, with the reason a person reads:"]
        lines += [f"  {n:>3} x {reason}" for reason, n in refusals.most_common()]
    second = Counter(o for r in results for run_id, o in r.outcomes.items() if run_id.endswith("-v3"))
    if second:
        lines += ["", "second releases: " + ", ".join(f"{o} {n}" for o, n in second.most_common())]
    injected = [r for r in results if r.scenario.api_faults]
    if injected:
        lines += ["", f"API faults: {sum(r.api_hits for r in injected)} calls hit in {len(injected)} runs"]
    applied = Counter(
        h.split(" at ")[0]
        for r in results
        for h in r.happenings
        if "not applied" not in h and not h.startswith(("api:", "stack:", "excused"))
    )
    missed = Counter(h.split(" at ")[0] for r in results for h in r.happenings if "not applied" in h)
    if applied or missed:
        lines.append(
            "done as drawn: "
            + ", ".join(f"{k} {n}" for k, n in sorted(applied.items()))
            + (
                "; not done (the run had moved on): " + ", ".join(f"{k} {n}" for k, n in sorted(missed.items()))
                if missed
                else ""
            )
        )
    excused = sum(r.excused_failures for r in results)
    requests = sum(r.requests for r in results)
    lines += [
        "",
        f"client loop: {requests} requests, {excused} failed inside a person's or a pod fault's window "
        "(excused), the rest counted as violations",
    ]
    bad = [r for r in results if r.violations or r.error]
    if bad:
        lines += ["", "VIOLATIONS AND ERRORS (replay one with make chaos SEED=<seed> RUNS=1):"]
        for r in bad:
            lines.append(f"  seed {r.scenario.seed}: {r.scenario.describe()} -> {r.outcome}")
            lines += [f"      {v}" for v in r.violations]
            if r.error:
                lines += ["      harness error: " + r.error.strip().splitlines()[-1]]
            lines.append(f"      happenings: {r.happenings}; afterwards: {r.followed_up}; log: {r.log}")
    violations = sum(len(r.violations) for r in results)
    if wall is not None:
        lines += ["", f"wall time {wall / 60:.1f} min"]
    lines.append(f"chaos: {len(results)} runs, {violations} invariant violations, seed {seed}")
    return "\n".join(lines)
