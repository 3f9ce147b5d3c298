"""What Airflow's metadata DB says of the release DAGs, for the Releases page: the last runs of each,
their task instances (each step's state, start and end) and what the metric analysis measured
(XCom ``analysis`` of ``wait_until_ready`` and ``soak``).  A few queries for all apps at once."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

#: the steps of a release, in order (wait_for_window only for apps with windows; rollback instead)
STEPS = (
    "wait_for_window",
    "plan",
    "deploy_new_color",
    "wait_until_ready",
    "approve",
    "switch_traffic",
    "soak",
    "retire_old_color",
    "finish",
    "rollback",
)
#: what the metric analysis measured (operators.ANALYSIS_KEY of operators.ANALYSED_TASKS)
ANALYSIS_KEY = "analysis"
ANALYSED_TASKS = ("wait_until_ready", "soak")
#: task states of a step still going on, the most telling first
ACTIVE = ("awaiting_input", "running", "deferred", "up_for_retry", "up_for_reschedule", "restarting", "queued")
#: task states of a step that ran
RAN = ("success", "failed", *ACTIVE)


@dataclass
class TaskView:
    task_id: str
    state: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    try_number: int = 0

    def seconds(self, now: dt.datetime) -> float | None:
        if self.start is None:
            return None
        return max(0.0, ((self.end or now) - self.start).total_seconds())


@dataclass
class RunView:
    dag_id: str
    run_id: str
    state: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    run_after: dt.datetime | None
    conf: dict = field(default_factory=dict)
    tasks: dict[str, TaskView] = field(default_factory=dict)
    analysis: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    @property
    def in_flight(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def rolled_back(self) -> bool:
        rollback = self.tasks.get("rollback")
        return bool(rollback and rollback.state in RAN)

    @property
    def current(self) -> TaskView | None:
        """The step going on now: the last one in release order among the active ones, the most
        telling state first (a person's answer awaited, running, deferred, a retry...)."""
        for state in ACTIVE:
            active = [t for t in self.tasks.values() if t.state == state]
            if active:
                return max(active, key=lambda t: STEPS.index(t.task_id) if t.task_id in STEPS else -1)
        return None

    @property
    def image(self) -> str | None:
        image = self.conf.get("image")
        return str(image) if image else None


def _state(value) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _analysis_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else json.dumps(decoded)
    return str(value)


def read_runs(
    dag_ids: list[str], per_dag: int, *, tasks_of: str = "all", analysis: bool = False, session=None
) -> dict[str, list[RunView]]:
    """The last ``per_dag`` runs of each DAG, newest first, with their task instances (``tasks_of``:
    "all" runs, "latest": the newest run of each DAG and any in flight, or "none") and, with
    ``analysis``, the analysis XComs."""
    if session is None:
        from airflow.utils.session import create_session

        with create_session() as new_session:
            return read_runs(dag_ids, per_dag, tasks_of=tasks_of, analysis=analysis, session=new_session)
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import func, select

    if not dag_ids:
        return {}
    ranked = (
        select(
            DagRun.id.label("id"),
            func.row_number().over(partition_by=DagRun.dag_id, order_by=DagRun.run_after.desc()).label("rank"),
        )
        .where(DagRun.dag_id.in_(dag_ids))
        .subquery()
    )
    rows = session.execute(
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagRun.state,
            DagRun.start_date,
            DagRun.end_date,
            DagRun.run_after,
            DagRun.conf,
        )
        .join(ranked, ranked.c.id == DagRun.id)
        .where(ranked.c.rank <= per_dag)
        .order_by(DagRun.dag_id, DagRun.run_after.desc())
    ).all()
    runs: dict[str, list[RunView]] = {d: [] for d in dag_ids}
    by_key: dict[tuple[str, str], RunView] = {}
    for dag_id, run_id, state, start, end, run_after, conf in rows:
        run = RunView(dag_id, run_id, _state(state), start, end, run_after, conf if isinstance(conf, dict) else {})
        runs[dag_id].append(run)
        by_key[(dag_id, run_id)] = run
    latest = {id(dag_runs[0]) for dag_runs in runs.values() if dag_runs}
    wanted = [
        r for r in by_key.values() if tasks_of == "all" or (tasks_of == "latest" and (r.in_flight or id(r) in latest))
    ]
    if wanted:
        for dag_id in {r.dag_id for r in wanted}:
            run_ids = [r.run_id for r in wanted if r.dag_id == dag_id]
            for task_id, run_id, state, start, end, try_number in session.execute(
                select(
                    TaskInstance.task_id,
                    TaskInstance.run_id,
                    TaskInstance.state,
                    TaskInstance.start_date,
                    TaskInstance.end_date,
                    TaskInstance.try_number,
                ).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id.in_(run_ids),
                    TaskInstance.map_index == -1,
                )
            ):
                by_key[(dag_id, run_id)].tasks[task_id] = TaskView(task_id, _state(state), start, end, try_number or 0)
    if analysis and by_key:
        from airflow.models.xcom import XComModel

        for dag_id in {d for d, _ in by_key}:
            run_ids = [r for d, r in by_key if d == dag_id]
            for task_id, run_id, value in session.execute(
                select(XComModel.task_id, XComModel.run_id, XComModel.value).where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id.in_(run_ids),
                    XComModel.key == ANALYSIS_KEY,
                    XComModel.task_id.in_(ANALYSED_TASKS),
                )
            ):
                text = _analysis_text(value)
                if text:
                    by_key[(dag_id, run_id)].analysis[task_id] = text
    return runs


def read_notes(dag_id: str, run_ids: list[str], session=None) -> dict[str, str]:
    """The runs' notes (what the release wrote: old and new color and image, the outcome)."""
    if session is None:
        from airflow.utils.session import create_session

        with create_session() as new_session:
            return read_notes(dag_id, run_ids, session=new_session)
    from airflow.models.dagrun import DagRun, DagRunNote
    from sqlalchemy import select

    if not run_ids:
        return {}
    rows = session.execute(
        select(DagRun.run_id, DagRunNote.content)
        .join(DagRunNote, DagRunNote.dag_run_id == DagRun.id)
        .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids))
    ).all()
    return {run_id: content for run_id, content in rows if content}
