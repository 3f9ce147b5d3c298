"""The Releases page as HTML: plain HTML and CSS, the timeline an inline SVG, and one small script
that lets a link to an Airflow page open in the whole window when the page is inside the Airflow
UI's frame (no JS build).  Everything shown is escaped."""

from __future__ import annotations

import datetime as dt
import json
from html import escape

from .cluster import ClusterView, ColorView
from .runs import RAN, STEPS, RunView
from .view import InFlight, Links, Row, ago, duration

REFRESH_SECONDS = 5

STYLE = """
:root { color-scheme: light; --blue: #2563eb; --green: #15803d; --muted: #64748b; --line: #e2e8f0;
  --bad: #b91c1c; --warn: #b45309; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px; color: #0f172a; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 6px; }
.sub { color: var(--muted); font-size: 12px; margin-bottom: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
a { color: #1d4ed8; text-decoration: none; } a:hover { text-decoration: underline; }
.chip { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; font-weight: 600;
  font-size: 12px; line-height: 20px; }
.chip.blue { background: var(--blue); } .chip.green { background: var(--green); }
.chip.none { background: #94a3b8; }
.img { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; overflow-wrap: anywhere; }
.muted { color: var(--muted); font-size: 12px; }
.err { color: var(--bad); font-weight: 600; }
.bad { color: var(--bad); } .ok { color: var(--green); } .warn { color: var(--warn); }
.step { font-weight: 600; }
.links a { margin-right: 8px; white-space: nowrap; }
ul.hist { list-style: none; margin: 0; padding: 0; } ul.hist li { margin: 0 0 2px; font-size: 12px; }
.lock { font-size: 12px; }
pre { background: #f8fafc; border: 1px solid var(--line); padding: 8px; overflow: auto; font-size: 12px; }
.legend span { display: inline-block; margin-right: 10px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
"""

# One link to an Airflow page opens in the whole window, not in the page's frame: the UI's frame
# may not navigate the window (its sandbox has no allow-top-navigation), but it is same-origin, so
# the page asks the UI's router to go there, as a click in the UI does (history + popstate).
SCRIPT = """
document.addEventListener('click', function (e) {
  var a = e.target.closest && e.target.closest('a[data-top]');
  if (!a || window.top === window || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
  try {
    var top = window.top, url = new URL(a.href, top.location.href);
    if (url.origin !== top.location.origin) return;
    var idx = ((top.history.state || {}).idx || 0) + 1;
    top.history.pushState({usr: null, key: Math.random().toString(36).slice(2, 10), idx: idx}, '',
      url.pathname + url.search + url.hash);
    top.dispatchEvent(new PopStateEvent('popstate', {state: top.history.state}));
    e.preventDefault();
  } catch (err) { /* not reachable: the link opens in the frame */ }
});
"""

TASK_COLORS = {
    "wait_for_window": "#a78bfa",
    "plan": "#facc15",
    "deploy_new_color": "#60a5fa",
    "wait_until_ready": "#38bdf8",
    "approve": "#f472b6",
    "switch_traffic": "#4ade80",
    "soak": "#22c55e",
    "retire_old_color": "#94a3b8",
    "finish": "#64748b",
    "rollback": "#dc2626",
}


def e(value) -> str:
    return escape("" if value is None else str(value))


def chip(color: str | None, label: str | None = None) -> str:
    css = color if color in ("blue", "green") else "none"
    return f'<span class="chip {css}">{e(label or color or "none")}</span>'


def top_link(href: str, text: str, **attrs: str) -> str:
    """A link to an Airflow page (opens in the whole window, see SCRIPT)."""
    extra = "".join(f' {k.replace("_", "-")}="{e(v)}"' for k, v in attrs.items())
    return f'<a data-top href="{e(href)}"{extra}>{e(text)}</a>'


def document(title: str, body: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>"
    )


# -- the list ------------------------------------------------------------------------------------
def live_cell(cluster: ClusterView | None) -> str:
    if cluster is None or cluster.error:
        return '<span class="err">cluster not answering</span>'
    if not cluster.service_exists:
        return '<span class="muted">no Service yet (never released)</span>'
    if cluster.live is None:
        return (
            '<span class="warn">the Service selects neither color</span> '
            f'<span class="muted">{e(cluster.selector)}</span>'
        )
    color = cluster.colors.get(cluster.live)
    image = color.image if color and color.exists else None
    detail = (
        f'<div class="img" data-field="live-image">{e(image)}</div><div class="muted">{e(color.state)}</div>'
        if color and color.exists
        else '<div class="bad">its workload is missing</div>'
    )
    return f'<span data-field="live-color">{chip(cluster.live)}</span>{detail}'


def idle_cell(cluster: ClusterView | None) -> str:
    if cluster is None or cluster.error:
        return ""
    colors = [cluster.idle] if cluster.idle else ["blue", "green"]
    parts = []
    for name in colors:
        color: ColorView | None = cluster.colors.get(name)
        if color is None:
            continue
        image = f'<div class="img">{e(color.image)}</div>' if color.exists and color.image else ""
        parts.append(f'<div>{chip(name)} <span data-field="idle-state">{e(color.state)}</span>{image}</div>')
    return "".join(parts)


def flight_cell(row: Row, links: Links, now: dt.datetime) -> str:
    flight: InFlight | None = row.in_flight
    if flight is None:
        last = row.last_run
        if last is None:
            return '<span class="muted">none</span>'
        outcome = outcome_of(last)
        return (
            f'<span class="muted">none; last run </span>{top_link(links.run(last.dag_id, last.run_id), last.run_id)} '
            f'<span class="{outcome[1]}">{e(outcome[0])}</span>'
        )
    run = flight.run
    step = flight.step
    step_name = step.task_id if step else "queued"
    state = f" ({step.state})" if step and step.state not in ("running",) else ""
    approval = (
        f'<div>{top_link(links.approval(run.dag_id, run.run_id), "Approve or reject", data_field="approval")}'
        f' <span class="muted">or {top_link(links.required_actions(), "Browse > Required Actions")}</span></div>'
        if flight.approval
        else ""
    )
    target = f"{chip(flight.new_color)} " if flight.new_color else ""
    return (
        f"<div>{top_link(links.run(run.dag_id, run.run_id), run.run_id, data_field='run')}</div>"
        f"<div>{target}<span class='img'>{e(flight.image)}</span></div>"
        f'<div><span class="step" data-field="step">{e(step_name)}</span>{e(state)}'
        f' <span class="muted">for {e(duration(flight.time_in_step(now)))}</span></div>'
        f'<div class="muted" data-field="waits-for">waits for {e(flight.waits_for)}</div>{approval}'
    )


def outcome_of(run: RunView) -> tuple[str, str]:
    """(words, css class) of a run's outcome."""
    if run.in_flight:
        return "in progress", "warn"
    if run.rolled_back:
        return "rolled back", "bad"
    if run.state == "success":
        skipped = run.tasks.get("plan")
        return ("nothing to release", "muted") if skipped and skipped.state == "skipped" else ("released", "ok")
    return (run.state or "?"), "bad" if run.state == "failed" else "muted"


def history_cell(cluster: ClusterView | None, row: Row, links: Links, now: dt.datetime, limit: int = 3) -> str:
    if cluster is None or cluster.error:
        return ""
    if not cluster.history:
        return '<span class="muted">none recorded</span>'
    items = []
    for entry in list(reversed(cluster.history))[:limit]:
        outcome = str(entry.get("outcome") or "")
        css = "bad" if outcome.startswith("rolled back") else "ok" if outcome == "released" else "muted"
        run_id = str(entry.get("run_id") or "")
        run = top_link(links.run(row.entry.dag_id, run_id), run_id) if run_id else ""
        items.append(
            f'<li data-outcome="{e(outcome.split(":")[0])}">{chip(entry.get("to"))} <span class="img">'
            f'{e(entry.get("image"))}</span> <span class="{css}" title="{e(outcome)}">'
            f"{e(outcome.split(':')[0])}</span> <span class='muted'>{e(ago(entry.get('at'), now))}</span> {run}</li>"
        )
    return f'<ul class="hist">{"".join(items)}</ul>'


def lock_cell(cluster: ClusterView | None, row: Row, links: Links) -> str:
    if cluster is None or cluster.error:
        return ""
    lock = cluster.lock
    if lock is None or not cluster.lock_held:
        return '<span class="muted" data-field="lock">free</span>'
    until = lock.expires.astimezone(dt.UTC).strftime("%H:%M UTC")
    return (
        f'<span class="lock warn" data-field="lock">locked</span> <span class="lock">by '
        f"{top_link(links.run(row.entry.dag_id, lock.run_id), lock.run_id)} until {e(until)}</span>"
    )


def app_cell(row: Row, links: Links) -> str:
    entry = row.entry
    if entry.app is None:
        return (
            f'<b>{e(entry.name)}</b><div class="err">config does not validate</div>'
            f'<div class="muted">{e(entry.error)}</div>'
        )
    app = entry.app
    return (
        f'<b><a href="{e(links.app(app.name))}" data-field="detail">{e(app.name)}</a></b>'
        f'<div class="muted">{e(app.platform)} · {e(app.connection_id)}</div>'
        f'<div class="muted">{e(app.namespace)}/{e(app.service)}</div>'
    )


def links_cell(row: Row, links: Links) -> str:
    entry = row.entry
    parts = [top_link(links.dag(entry.dag_id), "DAG", data_field="dag")]
    if entry.app is not None:
        parts.append(f'<a href="{e(links.objects(entry.name))}">Service</a>')
        cluster = row.cluster
        if cluster and cluster.preview_url:
            parts.append(f'<a href="{e(cluster.preview_url)}" data-field="preview">Preview</a>')
    return f'<span class="links">{"".join(parts)}</span>'


def releases_page(rows: list[Row], links: Links, now: dt.datetime, seconds: float, refresh: bool = True) -> str:
    body = []
    for row in rows:
        cluster = row.cluster
        error = (
            f'<tr class="cluster-error"><td></td><td colspan="6" class="err" data-field="cluster-error">'
            f"{e(cluster.error)}</td></tr>"
            if cluster and cluster.error
            else ""
        )
        step = row.in_flight.step.task_id if row.in_flight and row.in_flight.step else ""
        body.append(
            f'<tr id="app-{e(row.name)}" data-app="{e(row.name)}" data-live="{e(cluster.live if cluster else "")}"'
            f' data-step="{e(step)}" data-error="{e(bool(cluster and cluster.error)).lower()}">'
            f"<td>{app_cell(row, links)}</td><td>{live_cell(cluster)}</td><td>{idle_cell(cluster)}</td>"
            f"<td>{flight_cell(row, links, now)}</td><td>{history_cell(cluster, row, links, now)}</td>"
            f"<td>{lock_cell(cluster, row, links)}</td><td>{links_cell(row, links)}</td></tr>{error}"
        )
    table = (
        "<table><thead><tr><th>App</th><th>Live</th><th>Idle</th><th>Release in flight</th>"
        "<th>Last releases</th><th>Lock</th><th>Links</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
        if rows
        else '<p class="muted">No app configs found.</p>'
    )
    apps = f"{len(rows)} app{'' if len(rows) == 1 else 's'}"
    header = (
        f"<h1>Releases</h1><div class='sub'>{apps} · read {e(now.strftime('%H:%M:%S UTC'))} in "
        f"{seconds:.2f}s · refreshes every {REFRESH_SECONDS}s</div>"
    )
    return document("Releases", header + table, refresh)


# -- one app -------------------------------------------------------------------------------------
def timeline_svg(runs: list[RunView], now: dt.datetime, width: int = 760) -> str:
    """Each run a bar of its steps (length = duration), newest on top; a rollback drawn in red and
    labelled.  The scale is the longest run's."""
    runs = [r for r in runs if r.tasks]
    if not runs:
        return '<p class="muted">No runs yet.</p>'
    label_w, bar_h, gap, right = 210, 16, 10, 110
    plot_w = width - label_w - right

    def span(run: RunView) -> tuple[dt.datetime, dt.datetime]:
        starts = [t.start for t in run.tasks.values() if t.start]
        ends = [t.end or now for t in run.tasks.values() if t.start]
        start = min(starts) if starts else (run.start or now)
        return start, max(ends) if ends else (run.end or now)

    longest = max(max(1.0, (b - a).total_seconds()) for a, b in map(span, runs))
    height = len(runs) * (bar_h + gap) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="release timeline" font-family="system-ui, sans-serif" font-size="11">'
    ]
    for i, run in enumerate(runs):
        y = i * (bar_h + gap) + 4
        start, _ = span(run)
        outcome, _css = outcome_of(run)
        parts.append(
            f'<text x="0" y="{y + 12}" fill="#0f172a">{e(run.run_id[:30])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" fill="#f1f5f9"/>'
        )
        for task_id in STEPS:
            task = run.tasks.get(task_id)
            if task is None or task.start is None or task.state not in RAN:
                continue  # not run (skipped, upstream failed: Airflow gives those a start too)
            x = label_w + plot_w * (task.start - start).total_seconds() / longest
            w = max(1.5, plot_w * (task.seconds(now) or 0) / longest)
            fill = TASK_COLORS.get(task_id, "#94a3b8")
            stroke = ' stroke="#7f1d1d" stroke-width="1.5"' if task.state == "failed" else ""
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{fill}"{stroke}>'
                f"<title>{e(task_id)}: {e(task.state)}, {e(duration(task.seconds(now)))}</title></rect>"
            )
        color = "#b91c1c" if run.rolled_back else "#15803d" if outcome == "released" else "#64748b"
        mark = "⟲ rolled back" if run.rolled_back else outcome
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{y + 12}" fill="{color}" font-weight="600" '
            f'data-outcome="{e(outcome)}">{e(mark)}</text>'
        )
    axis_y = len(runs) * (bar_h + gap) + 14
    parts.append(
        f'<text x="{label_w}" y="{axis_y}" fill="#64748b">0</text>'
        f'<text x="{label_w + plot_w}" y="{axis_y}" fill="#64748b" text-anchor="end">{e(duration(longest))}</text>'
    )
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{e(t)}</span>' for t, c in TASK_COLORS.items())
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def steps_table(runs: list[RunView], links: Links, now: dt.datetime) -> str:
    steps = [s for s in STEPS if any(s in run.tasks for run in runs)]
    head = "".join(f"<th>{e(s)}</th>" for s in steps)
    body = []
    for run in runs:
        outcome, css = outcome_of(run)
        cells = []
        for step in steps:
            task = run.tasks.get(step)
            if task is None or task.start is None or task.state not in RAN:
                cells.append(f'<td class="muted">{e(task.state if task else "")}</td>')
                continue
            cls = "bad" if task.state == "failed" else ""
            cells.append(f'<td class="{cls}" title="{e(task.state)}">{e(duration(task.seconds(now)))}</td>')
        body.append(
            f'<tr data-run="{e(run.run_id)}"><td>{top_link(links.run(run.dag_id, run.run_id), run.run_id)}</td>'
            f'<td class="{css}">{e(outcome)}</td>{"".join(cells)}</tr>'
        )
    return f"<table><thead><tr><th>run</th><th>outcome</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def analysis_section(runs: list[RunView], links: Links) -> str:
    measured = [(run, task, text) for run in runs for task, text in sorted(run.analysis.items())]
    if not measured:
        return ""
    items = "".join(
        f"<li>{top_link(links.run(run.dag_id, run.run_id), run.run_id)} <b>{e(task)}</b>: {e(text)}</li>"
        for run, task, text in measured
    )
    return f'<h2>Analysis</h2><ul data-field="analysis">{items}</ul>'


def app_page(row: Row, links: Links, now: dt.datetime, notes: dict[str, str], refresh: bool = True) -> str:
    entry = row.entry
    header = (
        f'<div class="sub"><a href="{e(links.page())}">Releases</a> / {e(entry.name)}</div><h1>{e(entry.name)}</h1>'
    )
    summary = (
        "<table><thead><tr><th>App</th><th>Live</th><th>Idle</th><th>Release in flight</th>"
        "<th>Last releases</th><th>Lock</th><th>Links</th></tr></thead><tbody>"
        f'<tr id="app-{e(row.name)}" data-app="{e(row.name)}" data-live="{e(row.cluster.live if row.cluster else "")}">'
        f"<td>{app_cell(row, links)}</td><td>{live_cell(row.cluster)}</td><td>{idle_cell(row.cluster)}</td>"
        f"<td>{flight_cell(row, links, now)}</td><td>{history_cell(row.cluster, row, links, now, limit=10)}</td>"
        f"<td>{lock_cell(row.cluster, row, links)}</td><td>{links_cell(row, links)}</td></tr></tbody></table>"
    )
    if row.cluster and row.cluster.error:
        summary += f'<p class="err" data-field="cluster-error">{e(row.cluster.error)}</p>'
    timeline = f'<h2>Last runs</h2><div data-field="timeline">{timeline_svg(row.runs, now)}</div>'
    noted = "".join(
        f"<li>{top_link(links.run(entry.dag_id, run.run_id), run.run_id)}: {e(notes[run.run_id])}</li>"
        for run in row.runs
        if notes.get(run.run_id)
    )
    body = (
        header
        + summary
        + timeline
        + steps_table(row.runs, links, now)
        + analysis_section(row.runs, links)
        + (f"<h2>Run notes</h2><ul>{noted}</ul>" if noted else "")
    )
    return document(f"Releases: {entry.name}", body, refresh)


def objects_page(row: Row, links: Links) -> str:
    """The app's Service and both colors' workloads as read now (what ``kubectl get svc,deploy`` shows)."""
    entry, cluster = row.entry, row.cluster
    header = (
        f'<div class="sub"><a href="{e(links.page())}">Releases</a> / '
        f'<a href="{e(links.app(entry.name))}">{e(entry.name)}</a> / Service and deployments</div>'
        f"<h1>{e(entry.name)}: Service and deployments</h1>"
    )
    if cluster is None or cluster.error:
        return document(entry.name, header + f'<p class="err">{e(cluster.error if cluster else "not read")}</p>', False)
    app = entry.app
    assert app is not None
    service = {
        "name": f"{app.namespace}/{app.service}",
        "exists": cluster.service_exists,
        "selector": cluster.selector,
        "annotations": {
            k: _decoded(v) for k, v in sorted(cluster.annotations.items()) if k.startswith("bluegreen.io/")
        },
    }
    colors = {
        app.deployment_name(name): {
            "exists": c.exists,
            "image": c.image,
            "ready": f"{c.ready}/{c.desired}",
            "progress": c.progress,
            "failure": c.failure,
            "serving": name == cluster.live,
        }
        for name, c in cluster.colors.items()
    }
    body = (
        header
        + f"<h2>Service</h2><pre>{e(json.dumps(service, indent=2, default=str))}</pre>"
        + f"<h2>Deployments</h2><pre>{e(json.dumps(colors, indent=2))}</pre>"
    )
    return document(f"{entry.name}: Service and deployments", body, False)


def _decoded(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value
