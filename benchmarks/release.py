"""The release benchmark's core: N releases of N apps at once through the Airflow services, and
the same N releases by the seed's own procedure as N scripts at once, on a running stack.

:func:`run_benchmark` takes an already-running services stack (``tests/services/conftest.py``'s
``AirflowServices``) and the sandbox's ``Endpoints``; ``python -m benchmarks`` starts both, the
smoke test (tests/services/test_bench_smoke.py) hands in the session's.

How each figure is measured (per platform, per N):

- **T(N)**: from just before the N trigger requests (sent at once, one thread each) to the last
  run's ``end_date`` (REST).  **T_script(N)**: N scripts (benchmarks/procedure.py) started at once
  to the last one's exit.  **ratio** = T(N) / T_script(N).
- **overhead/release**: each run's trigger to its ``end_date``, minus the readiness, minus the
  soak, averaged.  The readiness is the platform's own: the median of what the N scripts saw at
  the same N (the new color's creation to ``kubectl rollout status`` returning, or to every BCS
  taskgroup Running with its health checks passed, polled every 0.5 s); the pods themselves are
  ready ``ready_after`` seconds after they start (a sandbox behaviour set for the bench's images).
- **hops**: for each task that ran, the gap from the previous task's end (the run's start for the
  first) to its ``start_date``, split at ``queued_when`` into scheduling (upstream done ->
  queued) and queue (queued -> running), from the task instances (REST).
- **CPU-s/release**: :class:`benchmarks.measure.CpuMeter` over the phase (before the triggers to
  when all runs were seen finished, at most ~0.5 s after the last end), every process counted,
  divided by N; the script side counts the sandbox and the scripts with every kubectl they ran
  (this process's ``RUSAGE_CHILDREN``).
- **API/release**: the sandbox's request counts over the phase divided by N, by verb and path
  template; ``excl. soak obs.`` leaves out what the soak task read of the workload (its watch or
  its polling of deployments, replicasets, pods, BCS taskgroups/applications), attributed by
  :func:`benchmarks.measure.attribute`; the Service reads and writes stay in.
- **parse**: no clean per-task source (the task logs do not time the DAG file), so it is measured
  in a subprocess, as a task process parses: ``airflow.sdk`` imported first, then the DAG file
  executed once with the apps of this run in ``BLUEGREEN_APPS_DIR`` and Airflow's parsing context
  naming one DAG and task (``_AIRFLOW_PARSING_CONTEXT_DAG_ID/TASK_ID``), and the same without a
  context (what the dag-processor does) with 100 app configs.
- **deferral**: one release with a long soak: the soak's task instance is seen ``deferred`` with a
  triggerer assigned, the process that ran it (its ``pid``) is gone, the scheduler's process tree
  is back to its idle size (no LocalExecutor slot held); the soak's end (``ends_at`` on the
  Service) to the task instance leaving ``deferred`` and running again, polled every 50 ms.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from .measure import CpuMeter, RequestSampler, attribute, counts_of, is_soak_observation, template
from .procedure import KUBECTL, KUBECTL_SCRIPT, Bcs, bcs_manifest, bcs_service, k8s_manifest

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_NAMES = {"kubernetes": "kubernetes", "k8s": "kubernetes", "bcs": "bcs-mesos", "bcs-mesos": "bcs-mesos"}
SHORT = {"kubernetes": "k", "bcs-mesos": "m"}


@dataclass
class BenchConfig:
    ns: list[int] = field(default_factory=lambda: [1, 5, 20])
    platforms: list[str] = field(default_factory=lambda: ["kubernetes", "bcs-mesos"])
    soak: float = 10.0
    defer_soak: float = 300.0
    ready_after: float = 1.0
    replicas: int = 2
    prefix: str = "bench"
    # BCS servicePorts of the bench's apps (the load balancer listens on servicePort + the
    # sandbox's offset; who uses which: tests/conftest.py LB_PORT_OFFSET).
    bcs_port_base: int = 100
    sample_interval: float = 0.25
    run_timeout: float = 900.0
    parse_apps: int = 100  # 0: no parse of that many configs
    parse_repeats: int = 3
    # how blue goes live before the measured releases: "airflow" (a first release through the DAG,
    # 1 s soak, not measured) or "direct" (blue and the Service created as the seed's procedure
    # starts, which the release adopts: quicker, for the smoke test)
    first_release: str = "airflow"
    settle: float = 2.0  # a pause between phases
    # the Airflow floor (benchmarks/floor_dags.py, served by ``python -m benchmarks`` beside the
    # release DAGs): N DAGs of a release's graph whose tasks only wait, triggered like the releases
    floor: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> BenchConfig:
        env = dict(os.environ if env is None else env)
        cfg = cls()
        if env.get("BENCH_N"):
            cfg.ns = sorted({int(x) for x in env["BENCH_N"].split(",") if x.strip()})
        if env.get("BENCH_PLATFORMS"):
            cfg.platforms = [PLATFORM_NAMES[p.strip()] for p in env["BENCH_PLATFORMS"].split(",") if p.strip()]
        for key, attr in (
            ("BENCH_SOAK", "soak"),
            ("BENCH_DEFER_SOAK", "defer_soak"),
            ("BENCH_READY_AFTER", "ready_after"),
        ):
            if env.get(key):
                setattr(cfg, attr, float(env[key]))
        if env.get("BENCH_REPLICAS"):
            cfg.replicas = int(env["BENCH_REPLICAS"])
        return cfg


def ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _secs(seconds: float) -> str:
    return f"{seconds:g}s" if seconds == int(seconds) else f"{seconds}s"


@dataclass
class App:
    platform: str
    name: str
    namespace: str
    dag_id: str = ""
    service_port: int = 0  # BCS
    color: str = "blue"  # the live color (script apps: kept here; Airflow apps: alternate with each release)


class Bench:
    def __init__(self, services: Any, endpoints: Any, config: BenchConfig, sandbox_pid: int | None, echo=print):
        self.services, self.endpoints, self.cfg, self.echo = services, endpoints, config, echo
        self.rest = services.rest
        self.control = requests.Session()
        self.control.trust_env = False
        self.control.headers["Authorization"] = f"Bearer {endpoints.token}"
        roots = {name: proc.pid for name, proc in services.procs.items() if name != "db-migrate"}
        if sandbox_pid:
            roots["sandbox"] = sandbox_pid
        self.cpu = CpuMeter(roots)
        self.work = Path(tempfile.mkdtemp(prefix="bluegreen-bench-"))
        self.airflow_apps: dict[str, list[App]] = {}
        self.script_apps: dict[str, list[App]] = {}
        self.defer_app: App | None = None
        self._ports = iter(range(config.bcs_port_base, config.bcs_port_base + 200))
        self._kube = None

    # -- clients ------------------------------------------------------------------------------
    @property
    def kube(self):
        if self._kube is None:
            import kubernetes

            self._kube = kubernetes.config.new_client_from_config(config_file=str(self.endpoints.kubeconfig))
        return self._kube

    def bcs(self) -> Bcs:
        e = self.endpoints
        return Bcs(e.bcs_url, e.token, e.bcs_cluster_id, str(e.ca_file))

    def create_namespace(self, name: str) -> None:
        from kubernetes import client
        from kubernetes.client import ApiException

        try:
            client.CoreV1Api(self.kube).create_namespace({"metadata": {"name": name}})
        except ApiException as e:
            if e.status != 409:
                raise

    # -- set-up ---------------------------------------------------------------------------------
    def image(self, tag: str) -> str:
        return f"registry.local/{self.cfg.prefix}:{tag}"

    def setup(self) -> None:
        cfg = self.cfg
        # the bench's pods are ready ready_after seconds after they start, whatever the sandbox's default
        self.control.post(
            f"{self.endpoints.control_url}/behaviour",
            json={"image": self.image("*"), "behaviour": f"ready-after-{cfg.ready_after:g}s"},
            timeout=10,
        ).raise_for_status()
        n = max(cfg.ns)
        staging = self.work / "staging"
        for platform in cfg.platforms:
            s = SHORT[platform]
            self.airflow_apps[platform] = [
                self.new_airflow_app(platform, f"{cfg.prefix}-{s}{i}", staging) for i in range(n)
            ]
            self.script_apps[platform] = [self.new_script_app(platform, f"{cfg.prefix}-{s}s{i}") for i in range(n)]
        if cfg.defer_soak > 0:
            platform = "kubernetes" if "kubernetes" in cfg.platforms else cfg.platforms[0]
            self.defer_app = self.new_airflow_app(platform, f"{cfg.prefix}-{SHORT[platform]}defer", staging)
        every = [a for apps in self.airflow_apps.values() for a in apps] + ([self.defer_app] if self.defer_app else [])
        started = time.monotonic()
        for app in every:
            self.rest.wait_for_dag(app.dag_id, timeout=120)
        self.echo(f"bench: {len(every)} release DAGs served {time.monotonic() - started:.1f}s after their configs")
        started = time.monotonic()
        if cfg.first_release == "direct":
            for app in every:
                self.deploy_blue(app)
            self.echo(f"bench: blue and the Service of {len(every)} apps created directly")
            return
        # the first release of each app (blue live), not measured
        # in batches: 41 trigger requests at once kept the api-server (one worker) busy past 30 s
        for i in range(0, len(every), 10):
            self.trigger_all(
                [(a.dag_id, "setup", {"image": self.image("v1"), "soak": "1s"}) for a in every[i : i + 10]]
            )
        finished = self.wait_runs([(a.dag_id, "setup") for a in every])
        failed = [r for r in finished.values() if r["state"] != "success"]
        if failed:
            raise RuntimeError(
                f"first releases failed: {[r['dag_id'] for r in failed]}\n{self.services.diagnostics(15)}"
            )
        self.echo(f"bench: {len(every)} first releases (blue live) in {time.monotonic() - started:.1f}s")

    def new_airflow_app(self, platform: str, name: str, staging: Path) -> App:
        cfg = self.cfg
        fields: dict[str, Any] = {"namespace": name, "replicas": cfg.replicas, "soak": _secs(cfg.soak)}
        app = App(platform, name, name, dag_id=self.services.dag_id(name))
        if platform == "kubernetes":
            self.create_namespace(name)
        else:
            app.service_port = next(self._ports)
            lb = app.service_port + self.endpoints.lb_port_offset
            fields["http_check"] = {"url": f"http://127.0.0.1:{lb}/", "timeout": "5s"}
        from e2e.harness import write_app

        staging.mkdir(parents=True, exist_ok=True)
        path = write_app(staging, name, platform, **fields)
        if platform == "bcs-mesos":
            svc = staging / name / "test-svc.json"
            svc.write_text(svc.read_text().replace('"servicePort": 8080', f'"servicePort": {app.service_port}'))
        # manifests first, the config last: the dag-processor never sees a half-written app
        apps_dir = Path(self.services.apps_dir)
        if (apps_dir / name).exists():
            shutil.rmtree(apps_dir / name)
        shutil.move(str(staging / name), str(apps_dir / name))
        shutil.move(str(path), str(apps_dir / path.name))
        return app

    def new_script_app(self, platform: str, name: str) -> App:
        app = App(platform, name, name)
        if platform == "kubernetes":
            self.create_namespace(name)
        else:
            app.service_port = next(self._ports)
        self.deploy_blue(app)
        return app

    def deploy_blue(self, app: App) -> None:
        """Blue and the Service, as the seed's procedure starts (created directly)."""
        name, image, replicas = app.namespace, self.image("v1"), self.cfg.replicas
        if app.platform == "kubernetes":
            import yaml
            from kubernetes import client

            client.AppsV1Api(self.kube).create_namespaced_deployment(
                name, yaml.safe_load(k8s_manifest("blue", image, replicas))
            )
            svc = yaml.safe_load((ROOT / "dags/apps/test/kubernetes/test-svc.yaml").read_text())
            client.CoreV1Api(self.kube).create_namespaced_service(name, svc)
        else:
            bcs = self.bcs()
            bcs.create("deployment", bcs_manifest("blue", name, image, replicas))
            bcs.create("service", bcs_service(name, app.service_port, "blue"))

    # -- driving runs ---------------------------------------------------------------------------
    def trigger_all(self, runs: list[tuple[str, str, dict]]) -> float:
        """Trigger every run at the same moment (a thread and a session each); the time just before."""
        from services.airflow_rest import AirflowRest

        clients = []
        for _ in runs:
            c = AirflowRest(self.rest.base_url, self.rest.username, self.rest.password, timeout=120)
            c.http.headers["Authorization"] = self.rest.http.headers["Authorization"]
            clients.append(c)
        barrier = threading.Barrier(len(runs) + 1)
        errors: list[BaseException] = []

        def go(client, dag_id, run_id, conf):
            barrier.wait()
            try:
                client.trigger(dag_id, conf, run_id=run_id)
            except BaseException as e:  # noqa: B036 - reported below
                errors.append(e)

        threads = [threading.Thread(target=go, args=(c, *r)) for c, r in zip(clients, runs, strict=True)]
        for t in threads:
            t.start()
        started = time.time()
        barrier.wait()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return started

    def wait_runs(self, runs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """Until every run has finished: one batch request every 0.5 s."""
        want = set(runs)
        dag_ids = sorted({d for d, _ in runs})
        deadline = time.monotonic() + self.cfg.run_timeout
        while True:
            found = self.rest.request(
                "POST", "/dags/~/dagRuns/list", json={"dag_ids": dag_ids, "page_limit": 1000}
            ).json()["dag_runs"]
            mine = {(r["dag_id"], r["dag_run_id"]): r for r in found if (r["dag_id"], r["dag_run_id"]) in want}
            if len(mine) == len(want) and all(r["state"] in ("success", "failed") for r in mine.values()):
                return mine
            if time.monotonic() > deadline:
                states = Counter(r["state"] for r in mine.values())
                raise RuntimeError(f"runs not finished within {self.cfg.run_timeout}s: {states}")
            time.sleep(0.5)

    def task_instances(self, runs: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict]]:
        out: dict[tuple[str, str], list[dict]] = defaultdict(list)
        body = {
            "dag_ids": sorted({d for d, _ in runs}),
            "dag_run_ids": sorted({r for _, r in runs}),
            "page_limit": 1000,
        }
        for ti in self.rest.request("POST", "/dags/~/dagRuns/~/taskInstances/list", json=body).json()["task_instances"]:
            key = (ti["dag_id"], ti.get("dag_run_id") or ti.get("run_id"))
            if key in set(runs):
                out[key].append(ti)
        return out

    # -- one phase --------------------------------------------------------------------------------
    def airflow_phase(self, platform: str, n: int) -> dict:
        apps = self.airflow_apps[platform][:n]
        run_id = f"n{n}"
        image = self.image(f"{SHORT[platform]}{n}")
        sampler = RequestSampler(self.endpoints.control_url, self.endpoints.token, self.cfg.sample_interval)
        cpu_before = self.cpu.snapshot()
        sampler.start()
        t0 = self.trigger_all([(a.dag_id, run_id, {"image": image}) for a in apps])
        runs = self.wait_runs([(a.dag_id, run_id) for a in apps])
        total = sampler.stop()
        cpu = CpuMeter.delta(cpu_before, self.cpu.snapshot())
        tis = self.task_instances(list(runs))
        for a in apps:
            a.color = "green" if a.color == "blue" else "blue"

        ends = {k: ts(r["end_date"]) or time.time() for k, r in runs.items()}
        per_run = {k: ends[k] - t0 for k in runs}
        hops, sched, queue, windows = [], [], [], []
        durations: dict[str, list[float]] = defaultdict(list)
        ns_of = {a.dag_id: a.namespace for a in apps}
        for (dag_id, _), items in tis.items():
            ran = sorted((ti for ti in items if ti.get("start_date")), key=lambda ti: ts(ti["start_date"]) or 0.0)
            prev_end = ts(runs[(dag_id, run_id)]["start_date"])
            for ti in ran:
                start, end, queued = ts(ti["start_date"]), ts(ti["end_date"]), ts(ti.get("queued_when"))
                if prev_end is not None and start is not None:
                    hops.append(max(0.0, start - prev_end))
                    if queued is not None and prev_end <= queued <= start:
                        sched.append(queued - prev_end)
                        queue.append(start - queued)
                if ti.get("duration") is not None:
                    durations[ti["task_id"]].append(float(ti["duration"]))
                if start is not None:
                    windows.append((ns_of[dag_id], ti["task_id"], start, end or time.time()))
                prev_end = end
        attributed = attribute(sampler.samples, windows, self.endpoints.bcs_cluster_id)
        by_verb: Counter = Counter()
        for (api, method, path), count in total.items():
            by_verb[f"{api} {method} {template(path, self.endpoints.bcs_cluster_id)[0]}"] += count
        by_task: dict[str, float] = defaultdict(float)
        soak_obs = 0.0
        for (_, task, verb, tpl), share in attributed.items():
            by_task[task] += share
            if is_soak_observation(task, verb, tpl):
                soak_obs += share
        api_total = sum(total.values())
        states = Counter(r["state"] for r in runs.values())
        return {
            "N": n,
            "T": max(per_run.values()),
            "runs": {f"{d}/{r}": round(v, 2) for (d, r), v in per_run.items()},
            "states": dict(states),
            "all_succeeded": states.get("success", 0) == n,
            "run_mean": statistics.mean(per_run.values()),
            "cpu": {k: round(v / n, 3) for k, v in cpu.items()},
            "cpu_per_release": round(sum(cpu.values()) / n, 3),
            "api_per_release": round(api_total / n, 2),
            "api_soak_observation_per_release": round(soak_obs / n, 2),
            "api_excl_soak_per_release": round((api_total - soak_obs) / n, 2),
            "api_by_verb": {k: round(v / n, 2) for k, v in sorted(by_verb.items(), key=lambda kv: -kv[1])},
            "api_by_task": {k: round(v / n, 2) for k, v in sorted(by_task.items(), key=lambda kv: -kv[1])},
            "hops_per_release": round(len(hops) / n, 2),
            "hop_seconds_per_release": round(sum(hops) / n, 2),
            "hop_mean": round(statistics.mean(hops), 3) if hops else None,
            "hop_max": round(max(hops), 3) if hops else None,
            "hop_sched_mean": round(statistics.mean(sched), 3) if sched else None,
            "hop_queue_mean": round(statistics.mean(queue), 3) if queue else None,
            "task_seconds": {k: round(statistics.mean(v), 2) for k, v in durations.items()},
            # for the notes: the task windows and the request counts, in seconds from the trigger
            "windows": [(w[0], w[1], round(w[2] - t0, 3), round(w[3] - t0, 3)) for w in windows],
            "timeline": [(round(x.at - t0, 3), sum(x.counts.values())) for x in sampler.samples],
            "sample_ti": next(iter(tis.values()))[0] if tis else None,
        }

    def script_phase(self, platform: str, n: int) -> dict:
        apps = self.script_apps[platform][:n]
        image = self.image(f"{SHORT[platform]}s{n}")
        e = self.endpoints
        commands = []
        if platform == "kubernetes":
            script = self.work / "kubectl.sh"
            script.write_text(KUBECTL_SCRIPT)
            script.chmod(0o755)
            env = {**os.environ, "KUBECTL": str(KUBECTL), "KUBECONFIG": str(e.kubeconfig)}
        else:
            env = {
                **os.environ,
                "BENCH_BCS_URL": e.bcs_url,
                "BENCH_BCS_TOKEN": e.token,
                "BENCH_BCS_CLUSTER": e.bcs_cluster_id,
                "BENCH_BCS_CA": str(e.ca_file),
                "PYTHONPATH": str(ROOT),
            }
        for a in apps:
            new = "green" if a.color == "blue" else "blue"
            if platform == "kubernetes":
                manifest = self.work / f"{a.name}-{new}-{n}.yaml"
                manifest.write_text(k8s_manifest(new, image, self.cfg.replicas))
                argv = ["bash", str(script), a.namespace, str(manifest), new, a.color, f"{self.cfg.soak:g}"]
            else:
                argv = [sys.executable, "-m", "benchmarks.procedure", "bcs", a.namespace, new, a.color, image]
                argv += [str(self.cfg.replicas), str(a.service_port), f"{self.cfg.soak:g}"]
            commands.append((argv, env))
        from .procedure import run_all

        self.control.post(f"{e.control_url}/requests/reset", timeout=10).raise_for_status()
        cpu_before = self.cpu.snapshot().get("sandbox", 0.0)
        children_before = _children_cpu()
        result = run_all(commands)
        counts = counts_of(self.control.get(f"{e.control_url}/requests", timeout=10).json()["requests"])
        sandbox_cpu = self.cpu.snapshot().get("sandbox", 0.0) - cpu_before
        scripts_cpu = _children_cpu() - children_before
        for a in apps:
            a.color = "green" if a.color == "blue" else "blue"
        by_verb: Counter = Counter()
        for (api, method, path), count in counts.items():
            by_verb[f"{api} {method} {template(path, e.bcs_cluster_id)[0]}"] += count
        return {
            "N": n,
            "T": result["T"],
            "failed": result["failed"],
            "ready_median": statistics.median(result["ready"]) if result["ready"] else None,
            "cpu": {"scripts": round(scripts_cpu / n, 3), "sandbox": round(sandbox_cpu / n, 3)},
            "cpu_per_release": round((scripts_cpu + sandbox_cpu) / n, 3),
            "api_per_release": round(sum(counts.values()) / n, 2),
            "api_by_verb": {k: round(v / n, 2) for k, v in sorted(by_verb.items(), key=lambda kv: -kv[1])},
        }

    # -- the deferral phase ---------------------------------------------------------------------
    def deferral_phase(self) -> dict:
        import psutil

        app = self.defer_app
        assert app is not None
        rest, soak = self.rest, self.cfg.defer_soak
        scheduler = psutil.Process(self.services.procs["scheduler"].pid)

        def tree() -> list[str]:
            out = []
            for p in scheduler.children(recursive=True):
                try:
                    out.append(f"{p.pid} {' '.join(p.cmdline())[:100]}")
                except psutil.Error:
                    continue
            return out

        idle = tree()
        run_id = "defer"
        rest.trigger(app.dag_id, {"image": self.image("defer"), "soak": _secs(soak)}, run_id=run_id)
        pid = None
        seen_running = None
        deadline = time.monotonic() + 300
        while True:
            ti = rest.task_instance(app.dag_id, run_id, "soak")
            if ti["state"] == "running":
                pid = ti.get("pid") or pid
                seen_running = seen_running or time.time()
            if ti["state"] == "deferred":
                break
            if ti["state"] in ("success", "failed", "upstream_failed") or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the soak did not defer: {ti['state']}; tasks {rest.task_instances(app.dag_id, run_id)}"
                )
            time.sleep(0.2)
        deferred_at = time.time()
        ti = rest.wait_trigger_running(app.dag_id, run_id, "soak", timeout=60)
        time.sleep(3)  # the worker has let go of it by now, if it ever will
        while_deferred = tree()
        pid = pid or ti.get("pid")
        task_alive = bool(pid) and psutil.pid_exists(pid) and any(line.startswith(f"{pid} ") for line in while_deferred)
        from kubernetes import client

        svc = client.CoreV1Api(self.kube).read_namespaced_service("test", app.namespace)
        soak_state = json.loads((svc.metadata.annotations or {}).get("bluegreen.io/soak") or "{}")
        ends_at = float(soak_state.get("ends_at") or 0.0)
        self.echo(
            f"bench: deferral: soak deferred {deferred_at - (seen_running or deferred_at):.1f}s after it started "
            f"running; the soak ends at +{ends_at - time.time():.0f}s"
        )
        left = running = None
        state = "deferred"
        deadline = time.monotonic() + soak + 120
        while time.time() < ends_at - 2 and time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.05, ends_at - 2 - time.time())))
        while time.monotonic() < deadline:
            state = rest.task_instance(app.dag_id, run_id, "soak")["state"]
            now = time.time()
            if left is None and state != "deferred":
                left = now
            if state in ("running", "success", "failed"):
                running = now
                break
            time.sleep(0.05)
        run = self.wait_runs([(app.dag_id, run_id)])[(app.dag_id, run_id)]
        final = rest.task_instance(app.dag_id, run_id, "soak")
        fired, resumed_line = _fired_and_resumed(rest.task_log(app.dag_id, run_id, "soak", final["try_number"]))
        return {
            "soak": soak,
            "deferred": True,
            "deferred_after_running_s": round(deferred_at - seen_running, 2) if seen_running else None,
            "triggerer_assigned": bool(ti.get("triggerer_job")),
            "task_pid": pid,
            "task_process_alive_while_deferred": task_alive,
            "scheduler_tree_idle": len(idle),
            "scheduler_tree_deferred": len(while_deferred),
            "slot_held": task_alive or len(while_deferred) > len(idle),
            "soak_ends_at": ends_at,
            "left_deferred_after_end_s": round(left - ends_at, 3) if left and ends_at else None,
            "running_after_end_s": round(running - ends_at, 3) if running and ends_at else None,
            "state_after_resume": state,
            "event_after_end_s": round(fired - ends_at, 3) if fired and ends_at else None,
            "task_logged_after_end_s": round(resumed_line - ends_at, 3) if resumed_line and ends_at else None,
            "run_state": run["state"],
        }

    # -- parse time -------------------------------------------------------------------------------
    def parse_times(self) -> dict:
        env = dict(self.services.env)
        apps_dir = str(self.services.apps_dir)
        first = next(iter(self.airflow_apps.values()))[0].dag_id
        k = self.cfg.parse_repeats
        out = {
            "apps_in_dir": len(list(Path(apps_dir).glob("*.yaml"))),
            "task_context_ms": _parse_ms(env, apps_dir, first, "plan", k),
            "no_context_ms": _parse_ms(env, apps_dir, None, None, k),
        }
        if not self.cfg.parse_apps:
            return out
        many = self.work / "parse-apps"
        many.mkdir(exist_ok=True)
        from e2e.harness import write_app

        for i in range(self.cfg.parse_apps):
            write_app(many, f"parse-{i}", "kubernetes" if i % 2 else "bcs-mesos", namespace=f"parse-{i}")
        out[f"no_context_{self.cfg.parse_apps}_apps_ms"] = _parse_ms(env, str(many), None, None, k)
        out[f"task_context_{self.cfg.parse_apps}_apps_ms"] = _parse_ms(env, str(many), "release_parse_1", "plan", k)
        return out

    def floor_phase(self, n: int) -> dict:
        """N floor DAGs (a release's graph; wait_until_ready sleeps the readiness, soak the soak,
        every other task returns at once) triggered at the same moment: T(N), overhead per run,
        CPU per run, as the release phases measure them."""
        runs = [(f"bench_floor_{i}", f"floor{n}") for i in range(n)]
        cpu_before = self.cpu.snapshot()
        t0 = self.trigger_all([(dag_id, run_id, {}) for dag_id, run_id in runs])
        finished = self.wait_runs(runs)
        cpu = CpuMeter.delta(cpu_before, self.cpu.snapshot())
        per_run = [(ts(r["end_date"]) or time.time()) - t0 for r in finished.values()]
        states = Counter(r["state"] for r in finished.values())
        if states.get("success", 0) != n:  # a floor whose runs fail measures nothing
            raise RuntimeError(f"floor runs did not all succeed: {dict(states)}\n{self.services.diagnostics(15)}")
        return {
            "N": n,
            "T": max(per_run),
            "overhead": round(statistics.mean(per_run) - self.cfg.ready_after - self.cfg.soak, 2),
            "cpu_per_run": round(sum(cpu.values()) / n, 3),
            "cpu": {k: round(v / n, 3) for k, v in cpu.items()},
        }

    # -- all of it --------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        results: dict[str, Any] = {"config": asdict(cfg), "platforms": {}}
        self.setup()
        for platform in cfg.platforms:
            rows = []
            for n in cfg.ns:
                self.echo(f"bench: {platform} N={n}: {n} releases through Airflow ...")
                air = self.airflow_phase(platform, n)
                time.sleep(cfg.settle)
                self.echo(f"bench: {platform} N={n}: {n} releases by the seed's procedure ...")
                script = self.script_phase(platform, n)
                ready = script["ready_median"] if script["ready_median"] is not None else cfg.ready_after
                row = {
                    "N": n,
                    "airflow": air,
                    "script": script,
                    "readiness": round(ready, 2),
                    "overhead": round(air["run_mean"] - ready - cfg.soak, 2),
                    "ratio": round(air["T"] / script["T"], 2) if script["T"] else None,
                }
                rows.append(row)
                self.echo(format_row(platform, row))
                time.sleep(cfg.settle)
            results["platforms"][platform] = rows
        if cfg.floor:
            for dag_id in (f"bench_floor_{i}" for i in range(max(cfg.ns))):
                self.rest.wait_for_dag(dag_id, timeout=120)
            rows = []
            for n in cfg.ns:
                self.echo(f"bench: the Airflow floor N={n}: {n} runs of a release's graph whose tasks only wait ...")
                rows.append(self.floor_phase(n))
                self.echo(format_floor(rows[-1]))
                time.sleep(cfg.settle)
            results["floor"] = rows
        results["parse"] = self.parse_times()
        if cfg.defer_soak > 0:
            self.echo(f"bench: deferral phase: one release with a {cfg.defer_soak:g}s soak ...")
            results["deferral"] = self.deferral_phase()
        results["summary"] = summary(results)
        return results


def _fired_and_resumed(log: str) -> tuple[float | None, float | None]:
    """From the soak's log (its trigger's lines included): when the trigger fired its event, and
    the first line the resumed task wrote after it."""
    fired = resumed = None
    for line in log.splitlines():
        stamp = line.split(" ", 1)[0]
        try:
            at = ts(stamp)
        except ValueError:
            continue
        if fired is None and "Trigger fired event" in line:
            fired = at
        elif fired is not None and at is not None and at >= fired and "trigger" not in line.lower():
            resumed = at
            break
    return fired, resumed


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


PARSE_SNIPPET = """
import os, runpy, sys, time
import airflow.sdk  # a task process has it already
t = time.perf_counter()
runpy.run_path(sys.argv[1])
print(round((time.perf_counter() - t) * 1000, 1))
"""


def _parse_ms(env: dict[str, str], apps_dir: str, dag_id: str | None, task_id: str | None, repeats: int) -> float:
    env = {**env, "BLUEGREEN_APPS_DIR": apps_dir}
    env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    env.pop("_AIRFLOW_PARSING_CONTEXT_TASK_ID", None)
    if dag_id:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id
        env["_AIRFLOW_PARSING_CONTEXT_TASK_ID"] = task_id or ""
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PARSE_SNIPPET, str(ROOT / "dags" / "release_apps.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"parsing failed: {out.stderr[-2000:]}")
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


# -- the report -------------------------------------------------------------------------------------

COMPONENTS = ("tasks", "scheduler", "dag-processor", "triggerer", "api-server", "sandbox")
ABBREV = {"tasks": "tasks", "scheduler": "sched", "dag-processor": "dagp", "triggerer": "trig", "api-server": "api"}
ABBREV["sandbox"] = "sbx"


def format_header() -> str:
    return (
        f"{'N':>3} {'T(N)':>7} {'T_scr':>7} {'ratio':>5} {'ovh/rel':>7} {'ready':>5} "
        f"{'CPU-s/rel':>9} {'(script)':>8} {'API/rel':>7} {'-soak':>6} {'(script)':>8} {'hops/rel':>13}"
        "  CPU by component"
    )


def format_row(platform: str, row: dict) -> str:
    a, s = row["airflow"], row["script"]
    cpu = " ".join(f"{ABBREV[c]} {a['cpu'].get(c, 0):.2f}" for c in COMPONENTS if c in a["cpu"])
    ok = "" if a["all_succeeded"] else f"  !! runs {a['states']}"
    ok += "" if not s["failed"] else f"  !! scripts failed: {s['failed'][:1]}"
    hops = f"{a['hops_per_release']:.0f}x{a['hop_mean'] or 0:.2f}={a['hop_seconds_per_release']:.1f}s"
    return (
        f"{row['N']:>3} {a['T']:>6.1f}s {s['T']:>6.1f}s {row['ratio'] or 0:>5.2f} {row['overhead']:>6.1f}s "
        f"{row['readiness']:>4.1f}s {a['cpu_per_release']:>9.2f} {s['cpu_per_release']:>8.2f} "
        f"{a['api_per_release']:>7.1f} {a['api_excl_soak_per_release']:>6.1f} {s['api_per_release']:>8.1f} "
        f"{hops:>13}  {cpu}{ok}"
    )


def format_floor(row: dict) -> str:
    cpu = " ".join(f"{ABBREV[c]} {row['cpu'].get(c, 0):.2f}" for c in COMPONENTS if c in row["cpu"])
    return f"{row['N']:>3} {row['T']:>6.1f}s {row['overhead']:>6.1f}s {row['cpu_per_run']:>9.2f}  {cpu}"


def summary(results: dict) -> dict:
    plats = results["platforms"]
    ns = results["config"]["ns"]
    small, large = min(ns), max(ns)

    def row(p, n):
        return next(r for r in plats[p] if r["N"] == n)

    overhead = max(row(p, small)["overhead"] for p in plats)
    cpu = max(row(p, large)["airflow"]["cpu_per_release"] for p in plats)
    api_platform = "kubernetes" if "kubernetes" in plats else next(iter(plats))
    api = row(api_platform, large)["airflow"]["api_excl_soak_per_release"]
    scale = max(row(p, large)["airflow"]["T"] / row(p, 1)["airflow"]["T"] for p in plats) if 1 in ns else None
    vs = max((row(p, large)["ratio"] or 0.0) for p in plats)
    label = "" if large == 20 else f" at N={large}"
    r_text = f"{scale:.2f}" if scale is not None else "n/a"
    line = (
        f"bench: overhead {overhead:.1f}s, cpu {cpu:.1f}s/release, api {api:.0f}/release, "
        f"T({large})/T(1)={r_text}, vs script {vs:.2f}{label}"
    )
    floor = {r["N"]: r["T"] for r in results.get("floor") or []}
    return {
        "floor_scale": round(floor[large] / floor[1], 2) if 1 in floor and large in floor else None,
        "overhead_s": overhead,
        "overhead_at_n": small,
        "cpu_per_release": cpu,
        "api_per_release": api,
        "api_platform": api_platform,
        "scale": scale,
        "vs_script": vs,
        "largest_n": large,
        "line": line,
    }


def render(results: dict) -> str:
    cfg = results["config"]
    out = []
    for platform, rows in results["platforms"].items():
        out.append(
            f"\n== {platform}: {cfg['replicas']} replicas, pods ready {cfg['ready_after']:g}s after they start, "
            f"soak {cfg['soak']:g}s; worst of the N runs' wall times is T(N)"
        )
        out.append(format_header())
        out.extend(format_row(platform, r) for r in rows)
        for r in rows:
            if r["N"] not in (min(cfg["ns"]), max(cfg["ns"])):
                continue
            a, s = r["airflow"], r["script"]
            out.append(f"  N={r['N']} API requests per release by verb and resource (Airflow):")
            out.append("    " + ", ".join(f"{k} {v:g}" for k, v in a["api_by_verb"].items()))
            out.append(f"  N={r['N']} ... by task (soak observation {a['api_soak_observation_per_release']:g}):")
            out.append("    " + ", ".join(f"{k} {v:.1f}" for k, v in a["api_by_task"].items()))
            out.append(f"  N={r['N']} ... the script: " + ", ".join(f"{k} {v:g}" for k, v in s["api_by_verb"].items()))
            out.append(
                f"  N={r['N']} hops: scheduling {a['hop_sched_mean']}s + queue {a['hop_queue_mean']}s mean, max "
                f"{a['hop_max']}s; task seconds: " + ", ".join(f"{k} {v:g}" for k, v in a["task_seconds"].items())
            )
    floor = results.get("floor")
    if floor:
        out.append(
            "\n== the Airflow floor: a release's graph whose tasks only wait (wait_until_ready "
            f"{cfg['ready_after']:g}s, soak {cfg['soak']:g}s), N runs of N DAGs at once"
        )
        out.append(f"{'N':>3} {'T(N)':>7} {'ovh/rel':>7} {'CPU-s/run':>9}  CPU by component")
        out.extend(format_floor(r) for r in floor)
        by_n = {r["N"]: r["T"] for r in floor}
        if 1 in by_n and len(by_n) > 1:
            out.append(f"floor: T({max(by_n)})/T(1)={by_n[max(by_n)] / by_n[1]:.2f}")
    parse = results.get("parse")
    if parse:
        out.append(
            "\nDAG parse (dags/release_apps.py in a subprocess, airflow.sdk imported first, median of the repeats): "
            + ", ".join(f"{k} {v:g}" for k, v in parse.items())
        )
    d = results.get("deferral")
    if d:
        out.append(
            f"deferral ({d['soak']:g}s soak): deferred {d['deferred_after_running_s']}s after it started running, "
            f"triggerer assigned {d['triggerer_assigned']}, task process (pid {d['task_pid']}) alive while deferred: "
            f"{d['task_process_alive_while_deferred']}, scheduler tree {d['scheduler_tree_deferred']} processes "
            f"(idle {d['scheduler_tree_idle']}), slot held: {d['slot_held']}; after the soak's end: "
            f"the trigger's event +{d['event_after_end_s']}s (log), left deferred +{d['left_deferred_after_end_s']}s, "
            f"running +{d['running_after_end_s']}s (polled), the resumed task's first log line "
            f"+{d['task_logged_after_end_s']}s; run {d['run_state']}"
        )
    out.append(
        "columns: T_scr = T_script(N); ratio = T(N)/T_script(N); ovh/rel = trigger-to-end - readiness - soak; "
        "ready = readiness the scripts saw; "
        "-soak = API/rel without the soak's watches (of the workload; of the Service on Kubernetes); "
        "hops/rel = count x mean = seconds"
    )
    out.append(results["summary"]["line"])
    return "\n".join(out)


def run_benchmark(
    services: Any, endpoints: Any, config: BenchConfig, sandbox_pid: int | None, echo: Callable = print
) -> dict:
    return Bench(services, endpoints, config, sandbox_pid, echo).run()
