r"""The direct driver: one release run, its tasks in Airflow's order and with Airflow's task
semantics, each task in a process of its own (chaos.drivers.processes) that the chaos can kill.

    plan -> deploy_new_color -> wait_until_ready -> switch_traffic -> soak -> retire_old_color -> finish
            \__________________ one failed (trigger rule one_failed) __________/ -> rollback

What is mimicked (bluegreen.operators, sensors, dags.py):
  * a ``ReleaseError`` fails the task at once (no retry); the rollback runs when a guarded task
    (deploy_new_color .. soak) failed; the failure's message is the rollback's reason
  * anything else (``TransientError`` past the retry budget, a process killed with SIGKILL, a
    trigger that crashed) is a task retry: the task runs again after Airflow's backoff (5 s,
    doubling, at most 5 minutes), up to ``app.retries`` times
  * the rollback retries every failure but ``Fenced``, up to ``app.rollback_retries`` times
  * the sensors defer at once (``defer_after: 0``): readiness is ``ReadinessTrigger`` with the
    deadline the sensor set for this try; the soak is ``Release.start_soak`` in the worker, then
    ``SoakTrigger``, then ``mark_soaked`` in the worker (the sensor's ``on_success``).  A killed
    trigger process is a killed triggerer: the trigger runs again with the same arguments
  * a person marking a running task failed: its process is stopped and the task fails without a
    reason; the rollback says "<task> was marked failed ..."
  * clearing a task (with downstream) resets it and what follows it, and the run goes on

The run's note is the operators' (``bluegreen.run_notes.release_note``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .processes import Outcome, StepProcess

ORDER = ["plan", "deploy_new_color", "wait_until_ready", "switch_traffic", "soak", "retire_old_color", "finish"]
GUARDED = ["deploy_new_color", "wait_until_ready", "switch_traffic", "soak"]
SENSORS = ("wait_until_ready", "soak")
ALL = ORDER + ["rollback"]
SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"
STEP_TIMEOUT = 180.0


def backoff(attempt: int) -> float:
    """Airflow's wait before try ``attempt + 2`` (bluegreen/dags.py: retry_delay 5 s, exponential
    backoff 2.0, at most 5 minutes)."""
    return min(300.0, 5.0 * 2**attempt)


@dataclass
class TaskTry:
    task: str
    attempt: int
    started: float
    ended: float = 0.0
    result: str = ""


class DirectRun:
    """One DAG run of one app's release, driven here.  ``hooks`` (the chaos injector) hears of
    every process started, so that it can kill one, and of the phases a run goes through."""

    def __init__(
        self,
        app,
        run_id: str,
        image: str,
        replicas: int,
        soak_seconds: float,
        log_path: str,
        hooks=None,
        reason: str = "",
    ):
        self.app, self.run_id, self.image = app, run_id, image
        self.replicas, self.soak_seconds = replicas, soak_seconds
        self.log_path, self.hooks, self.reason = log_path, hooks, reason
        self.config = app.app
        self.app_json = self.config.to_json()
        self.state: dict[str, str | None] = {t: None for t in ALL}
        self.failure: dict[str, str] = {}  # the XCom "failure" of each task that failed with a reason
        self.plan: dict | None = None
        self.note = ""
        self.rollback_summary = ""
        self.tries: list[TaskTry] = []
        self.current: StepProcess | None = None
        self.current_task: str | None = None
        self._marked: str | None = None
        self._lock = threading.Lock()
        self.started = self.ended = 0.0
        self.followed_up: list[str] = []  # what a person did after the run ended (chaos.followup)

    # -- what the chaos and the checks read ------------------------------------------------------
    @property
    def run_state(self) -> str:
        if self.state["finish"] == SUCCESS:
            return SUCCESS
        return FAILED if any(s == FAILED for s in self.state.values()) else "running"

    @property
    def failed_tasks(self) -> list[str]:
        return [t for t in ALL if self.state[t] == FAILED]

    @property
    def outcome(self) -> str:
        """released, rolled back, refused (the plan refused with a reason, or another run has the app
        now: a fenced rollback), failed (anything else), running."""
        if self.run_state == SUCCESS:
            return "released"
        if self.state["rollback"] == SUCCESS:
            return "rolled back"
        if self.state["plan"] == FAILED and self.failure.get("plan"):
            return "refused"
        if self.state["rollback"] == FAILED and self.failure.get("rollback", "").startswith("rollback refused"):
            return "refused"
        return "failed" if self.run_state == FAILED else "running"

    @property
    def failure_summary(self) -> str:
        return "; ".join(
            f"{t}: {self.failure.get(t, 'failed without a reason (see its log)')}" for t in self.failed_tasks
        )

    def messages(self) -> list[str]:
        return [t.result for t in self.tries]

    # -- the person's hand -----------------------------------------------------------------------
    def mark_failed(self, task: str | None = None) -> str | None:
        """Mark the running sensor failed (the UI's "Mark Task Instance as... Failed" on
        ``wait_until_ready`` or ``soak``, the README's rollback); returns the task, or None when the
        sensor named (or either, when None) is not running now."""
        with self._lock:
            running = self.current_task
            if running not in SENSORS or (task is not None and running != task):
                return None
            self._marked = running
            if self.current is not None:
                self.current.kill()
            return running

    # -- running ---------------------------------------------------------------------------------
    def execute(self) -> DirectRun:
        """Run every task that is not done yet, in order (the scheduler's loop)."""
        self.started = self.started or time.time()
        for task in ORDER:
            if self.state[task] in (SUCCESS, SKIPPED):
                continue
            if self.state[task] == FAILED:
                break
            if not self._run_task(task):
                break
        if self.state["plan"] == SUCCESS and any(self.state[t] == FAILED for t in GUARDED):
            if self.state["rollback"] is None:
                self._run_rollback()
        elif self.state["rollback"] is None and all(self.state[t] == SUCCESS for t in GUARDED):
            self.state["rollback"] = SKIPPED
        self.ended = time.time()
        return self

    def clear(self, task: str, downstream: bool = True) -> DirectRun:
        """The UI's Clear on ``task`` (keep Downstream checked); the run goes on."""
        if task == "rollback":
            cleared = ["rollback"]
        else:
            index = ORDER.index(task)
            cleared = ORDER[index:] + ["rollback"] if downstream else [task]
            if downstream and task == "plan":
                self.plan = None
        for t in cleared:
            self.state[t] = None
            self.failure.pop(t, None)
        if task == "rollback":
            self._run_rollback()
            self.ended = time.time()
            return self
        return self.execute()

    def roll_back_by_hand(self, task: str) -> DirectRun:
        """A person marks ``task`` failed after the fact and clears ``rollback``: the rollback runs
        with the reason a task marked failed gets."""
        self.state[task] = FAILED
        self.failure.pop(task, None)
        self.state["rollback"] = None
        self._run_rollback()
        self.ended = time.time()
        return self

    # -- one task, with its retries --------------------------------------------------------------
    def _phase(self, name: str) -> None:
        if self.hooks is not None:
            self.hooks.on_phase(self, name)

    def _process(self, task: str, action: str, args: dict, attempt: int, kind: str) -> Outcome:
        """Start ``action`` in a process, let the chaos see it, wait for its outcome."""
        with self._lock:
            if self._marked == task:
                return Outcome(ok=False, error="MarkedFailed", killed=True)
            proc = StepProcess(action, self.app_json, self.run_id, args, self.log_path)
            self.current, self.current_task = proc, task
        try_ = TaskTry(task, attempt, proc.started)
        self.tries.append(try_)
        if self.hooks is not None:
            self.hooks.on_process(self, kind, task, proc)
        outcome = proc.wait(STEP_TIMEOUT)
        with self._lock:
            self.current, self.current_task = None, None
        try_.ended, try_.result = time.time(), f"{action}: {outcome.summary}"
        return outcome

    def _fail(self, task: str, message: str | None) -> bool:
        self.state[task] = FAILED
        if message:
            self.failure[task] = message
        return False

    def _marked_now(self, task: str) -> bool:
        with self._lock:
            if self._marked == task:
                self._marked = None
                return True
            return False

    def _run_task(self, task: str) -> bool:
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            outcome = self._attempt(task, attempt)
            if self._marked_now(task):
                return self._fail(task, None)
            if outcome.ok:
                self.state[task] = SUCCESS
                if task == "plan":
                    self.plan = outcome.value
                    self.note = self._note("in progress")
                    self._phase("planned")
                if task == "finish":
                    self.note = self._note("released")
                return True
            if outcome.release_error:
                if task == "plan":
                    self.note = ""
                return self._fail(task, outcome.message)
            if attempt + 1 < attempts:
                time.sleep(backoff(attempt))
        return self._fail(task, None)

    def _attempt(self, task: str, attempt: int) -> Outcome:
        plan = {"plan": self.plan} if self.plan else {}
        if task == "plan":
            return self._process(
                task,
                "plan",
                {"image": self.image, "replicas": self.replicas, "soak_seconds": self.soak_seconds},
                attempt,
                "worker",
            )
        if task == "wait_until_ready":
            deadline = time.time() + self.config.readiness_timeout
            self._phase("readiness")
            return self._trigger(
                task,
                "readiness_trigger",
                {**plan, "deadline": deadline, "timeout": self.config.readiness_timeout},
                attempt,
            )
        if task == "soak":
            started = self._process(task, "soak_start", plan, attempt, "worker")
            if not started.ok:
                return started
            self._phase("soak")
            event = self._trigger(task, "soak_trigger", plan, attempt)
            if not event.ok:
                return event
            return self._process(task, "mark_soaked", plan, attempt, "worker")
        action = {
            "deploy_new_color": "deploy",
            "switch_traffic": "switch",
            "retire_old_color": "retire_old",
            "finish": "finish",
        }[task]
        if task == "switch_traffic":
            self._phase("switch")
        return self._process(task, action, plan, attempt, "worker")

    def _trigger(self, task: str, action: str, args: dict, attempt: int) -> Outcome:
        """A deferred sensor: the trigger runs until it fires; a killed triggerer's trigger runs again."""
        while True:
            outcome = self._process(task, action, args, attempt, "triggerer")
            if outcome.killed and not self._is_marked(task) and outcome.error != "StepTimeout":
                time.sleep(1.0)  # a new triggerer takes the trigger over
                continue
            if not outcome.ok:
                return outcome
            event = outcome.value or {}
            if event.get("state") == "failed":
                return Outcome(
                    ok=False, error="TriggerEvent", message=event.get("message", "failed"), release_error=True
                )
            return Outcome(ok=True, value=event)

    def _is_marked(self, task: str) -> bool:
        with self._lock:
            return self._marked == task

    # -- the rollback task -----------------------------------------------------------------------
    def _reason(self) -> str:
        for task in GUARDED:
            if task in self.failure:
                return f"{task}: {self.failure[task]}"
        failed = [t for t in GUARDED if self.state[t] == FAILED]
        if failed:
            return f"{failed[0]} was marked failed (or failed without a reason: see its log)"
        return "a step was marked failed (no reason recorded; see the failed task's log)"

    def _run_rollback(self) -> None:
        if self.plan is None:
            self.state["rollback"] = SKIPPED
            return
        reason = self._reason()
        attempts = self.config.rollback_retries + 1
        for attempt in range(attempts):
            self._phase("rollback")
            outcome = self._process("rollback", "rollback", {"plan": self.plan, "reason": reason}, attempt, "worker")
            if outcome.ok:
                self.state["rollback"] = SUCCESS
                self.rollback_summary = outcome.value
                self.note = self._note(f"rolled back ({reason})")
                return
            if outcome.fenced:
                self.note = self._note(f"ROLLBACK REFUSED: {outcome.message}")
                self._fail("rollback", f"rollback refused: {outcome.message}")
                return
            if attempt + 1 < attempts:
                time.sleep(backoff(attempt))
        self.note = self._note(f"ROLLBACK FAILED: {outcome.summary}")
        self._fail("rollback", outcome.summary)

    def _note(self, outcome: str) -> str:
        from bluegreen.release.model import Plan
        from bluegreen.run_notes import release_note

        return release_note(self.config.name, Plan.from_json(self.plan), outcome, self.reason)
