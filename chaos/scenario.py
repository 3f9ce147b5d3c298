"""Scenario generation: everything a run does is drawn from its seed, before it starts.

A run's seed says which driver runs it (``airflow`` for every tenth seed: seed % 10 == 0,
``direct`` otherwise), the platform, the release (replicas, soak, the image's behaviour), and
the faults, each with its moment:

  api-5xx api-429 api-delay api-hang api-reset     injected on the app's API calls (its namespace),
  watch-cut watch-gone (Kubernetes)                with a probability and a number of hits, so that
                                                   they land on calls spread over the release
  kill-worker kill-triggerer kill-scheduler        SIGKILL of the process running a task, of the
                                                   trigger's process, of the scheduler (Airflow runs)
  person-scale person-switch person-delete-green   a person's kubectl / raw BCS command at a random
  person-rollback                                  moment; or marking the running task failed
  second-release                                   another run of the same app at a random moment
  pod-kill pod-evict pod-unready                   a member of the new color, during the soak
  image-never-ready                                a release whose pods never become ready

``make chaos SEED=S RUNS=N`` runs seeds S, S+1, ..., S+N-1; ``SEED=<a run's seed> RUNS=1`` replays
that run's scenario (same faults at the same moments; not the same interleaving of threads).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

KUBERNETES, BCS = "kubernetes", "bcs-mesos"
API_KINDS = {
    KUBERNETES: ["api-5xx", "api-429", "api-delay", "api-hang", "api-reset", "watch-cut", "watch-gone"],
    BCS: ["api-5xx", "api-429", "api-delay", "api-hang", "api-reset"],
}
PERSON_KINDS = ["person-scale", "person-switch", "person-delete-green", "person-rollback"]
POD_KINDS = ["pod-kill", "pod-evict", "pod-unready"]
ALL_KINDS = (
    API_KINDS[KUBERNETES]
    + ["kill-worker", "kill-triggerer", "kill-scheduler"]
    + PERSON_KINDS
    + ["second-release"]
    + POD_KINDS
    + ["image-never-ready", "none"]
)
WORKER_TASKS = ["plan", "deploy_new_color", "switch_traffic", "soak", "retire_old_color", "finish"]


def driver_of(seed: int) -> str:
    return "airflow" if seed % 10 == 0 else "direct"


@dataclass
class Scenario:
    seed: int
    driver: str
    platform: str
    replicas: int
    soak: float
    old_color: str = "delete"
    image_tag: str = "v2"
    api_faults: list[dict] = field(default_factory=list)  # {"kind", "spec"}
    kill: dict | None = None  # {"kind", "task"?, "delay"?, "at"?}
    person: dict | None = None  # {"kind", "at", "color"?, "replicas"?}
    second_release: dict | None = None  # {"at"}
    pod_fault: dict | None = None  # {"kind", "after", "seconds"?}
    retry_after_rollback: bool = False

    @property
    def kinds(self) -> list[str]:
        kinds = [f["kind"] for f in self.api_faults]
        for part in (self.kill, self.person, self.pod_fault):
            if part:
                kinds.append(part["kind"])
        if self.second_release:
            kinds.append("second-release")
        if "never-ready" in self.image_tag:
            kinds.append("image-never-ready")
        return list(dict.fromkeys(kinds)) or ["none"]

    def describe(self) -> str:
        return (
            f"seed {self.seed} {self.driver} {self.platform} replicas={self.replicas} soak={self.soak:g}s "
            f"image={self.image_tag}{' old_color=scale-to-zero' if self.old_color != 'delete' else ''}: "
            + ", ".join(self.kinds)
        )

    def to_json(self) -> dict:
        return {**asdict(self), "kinds": self.kinds}


def _api_fault(rng: random.Random, kind: str) -> dict:
    method = rng.choice(["*", "*", "*", "GET", "PUT", "POST", "DELETE"])
    spec: dict
    if kind == "api-5xx":
        spec = {
            "status": rng.choice([500, 502, 503, 504]),
            "probability": rng.uniform(0.1, 0.35),
            "times": rng.randint(2, 8),
            "method": method,
        }
    elif kind == "api-429":
        spec = {
            "status": 429,
            "headers": {"Retry-After": "1"},
            "probability": rng.uniform(0.1, 0.3),
            "times": rng.randint(2, 6),
            "method": method,
        }
    elif kind == "api-delay":
        spec = {
            "delay": round(rng.uniform(0.3, 2.0), 2),
            "probability": rng.uniform(0.1, 0.4),
            "times": rng.randint(3, 10),
            "method": method,
        }
    elif kind == "api-hang":
        spec = {"hang": True, "probability": rng.uniform(0.05, 0.2), "times": rng.randint(1, 2), "method": method}
    elif kind == "api-reset":
        spec = {"reset": True, "probability": rng.uniform(0.1, 0.3), "times": rng.randint(2, 8), "method": method}
    elif kind == "watch-cut":
        spec = {"cut_after": rng.randint(0, 3), "probability": rng.uniform(0.3, 1.0), "times": rng.randint(1, 4)}
    elif kind == "watch-gone":
        spec = {"gone": True, "probability": rng.uniform(0.3, 1.0), "times": rng.randint(1, 3)}
    else:
        raise ValueError(kind)
    spec["probability"] = round(spec["probability"], 2)
    if not kind.startswith("watch-"):
        # every call of the app, or only those on its Service (the lock, the switch, the records) or its workloads
        target = rng.choice([None, None, "service", "workload"])
        if target:
            spec["target"] = target
    return {"kind": kind, "spec": spec}


def generate(seed: int, driver: str | None = None) -> Scenario:
    rng = random.Random(seed)
    driver = driver or driver_of(seed)
    airflow = driver == "airflow"
    platform = rng.choice([KUBERNETES, BCS])
    soak = round(rng.uniform(8, 12) if airflow else rng.uniform(2, 4), 1)
    scn = Scenario(seed=seed, driver=driver, platform=platform, replicas=rng.choice([2, 3]), soak=soak)
    if platform == KUBERNETES and rng.random() < 0.2:
        scn.old_color = "scale-to-zero"
    roll = rng.random()
    scn.image_tag = "v2-never-ready" if roll < 0.06 else "v2-ready-after-2s" if roll < 0.2 else "v2"
    # about how long the release takes without faults, from its start to finish (an Airflow run spends
    # a second or two scheduling each task), and when its first task starts
    span, lead = (25.0 + soak, 3.0) if airflow else (5.0 + soak, 0.3)

    if rng.random() < 0.6:
        kinds = rng.sample(API_KINDS[platform], 2 if rng.random() < 0.25 else 1)
        scn.api_faults = [_api_fault(rng, k) for k in kinds]
    if rng.random() < (0.85 if airflow else 0.35):
        kinds = ["kill-worker", "kill-triggerer", "kill-scheduler"] if airflow else ["kill-worker", "kill-triggerer"]
        kind = rng.choice(kinds)
        if kind == "kill-worker":
            scn.kill = {"kind": kind, "task": rng.choice(WORKER_TASKS), "delay": round(rng.uniform(0.02, 0.35), 2)}
            if airflow:  # the task's process, or the worker (the task's process and its supervisor)
                scn.kill["mode"] = rng.choice(["task", "worker"])
        elif kind == "kill-triggerer":
            task = "soak" if airflow else rng.choice(["wait_until_ready", "soak"])
            scn.kill = {
                "kind": kind,
                "task": task,
                "delay": round(
                    rng.uniform(0.1, 1.0) if task == "wait_until_ready" else rng.uniform(0.2, 0.6 * soak), 2
                ),
            }
        else:
            scn.kill = {"kind": kind, "at": round(rng.uniform(lead, span), 2)}
    if rng.random() < 0.35:
        kind = rng.choice(PERSON_KINDS)
        person = {"kind": kind, "at": round(rng.uniform(lead, span + 1), 2)}
        if kind == "person-scale":
            person.update(color=rng.choice(["blue", "green"]), replicas=rng.choice([1, 2, 4]))
        elif kind == "person-switch":
            person.update(color=rng.choice(["blue", "green"]))
        scn.person = person
    if rng.random() < 0.15:
        scn.second_release = {"at": round(rng.uniform(lead, span + 4), 2)}
    if rng.random() < 0.3 and "never-ready" not in scn.image_tag:
        kind = rng.choice(POD_KINDS)
        scn.pod_fault = {
            "kind": kind,
            "after": round(rng.uniform(0.2, soak * 0.7), 2),
            "seconds": round(rng.uniform(1.0, 3.0), 1),
        }
    scn.retry_after_rollback = rng.random() < 0.3
    return scn
