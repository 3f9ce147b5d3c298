"""``make demo``: a real blue-green release of the seed's test app, on the sandbox, run by Airflow.

1. starts the sandbox (or reuses one that ``make sandbox`` runs) and Airflow (``airflow
   standalone``: api-server, scheduler, dag-processor, triggerer);
2. releases registry.local/test:v1 (the app's first release: blue), then
   registry.local/test:v2 (to green) while a client sends requests through the Service's
   port, and shows what the port served before and after the switch;
3. prints the runs' outcome, the UI's address and how to log in, and keeps everything up
   until Ctrl-C (``DEMO_EXIT=1`` stops right away instead).

``DEMO_BAD=1`` also shows the metric analysis: a real Prometheus scrapes the sandbox's pods, the
app gets an ``analysis`` (its error rate, before the switch and during the soak), a smoke tester
sends requests straight to the new color's pods before the switch, and after the good release
a bad one (``registry.local/test:v3-error-rate-20``: one answer in five is a 500, readiness
passes) is stopped by its analysis before it takes traffic.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from bluegreen.provider import forkserver_settings, scheduler_settings

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".demo"
AIRFLOW_HOME = STATE / "airflow"
SANDBOX_DIR = ROOT / ".sandbox"
PORT = int(os.environ.get("AIRFLOW_PORT", "8080"))
API = f"http://127.0.0.1:{PORT}"
DAG_ID = "release_test"
IMAGES = ("registry.local/test:v1", "registry.local/test:v2")
BAD_IMAGE = "registry.local/test:v3-error-rate-20"
BAD = os.environ.get("DEMO_BAD") == "1"
PROMETHEUS_PORT = int(os.environ.get("DEMO_PROMETHEUS_PORT", "9090"))
# The app's analysis under DEMO_BAD (the README's example): the new color's share of 5xx answers.
ANALYSIS = {
    "connection_id": "sandbox_prometheus",
    "before_switch": "10s",
    "checks": [
        {
            "name": "error-rate",
            "query": 'sum(rate(http_requests_total{namespace="{namespace}",deployment="{deployment}",code=~"5.."}[5s]))'
            ' / sum(rate(http_requests_total{namespace="{namespace}",deployment="{deployment}"}[5s]))',
            "condition": "< 0.05",
            "interval": "2s",
            # Prometheus' service discovery passes new pods on at most every 5 s; a rate needs two scrapes
            "initial_delay": "8s",
        }
    ],
}


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say(f"\n==> {text}")


class Demo:
    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.endpoints = None
        self.prometheus = contextlib.ExitStack()

    # -- processes ------------------------------------------------------------------------
    def start_sandbox(self):
        from sandbox.server import Endpoints

        marker = SANDBOX_DIR / "sandbox.json"
        if marker.exists():
            endpoints = Endpoints.load(SANDBOX_DIR)
            try:
                requests.get(
                    f"{endpoints.control_url}/requests",
                    timeout=2,
                    headers={"Authorization": f"Bearer {endpoints.token}"},
                ).raise_for_status()
                say(f"using the sandbox already running ({endpoints.kube_url})")
                return endpoints
            except requests.RequestException:
                marker.unlink()
        log = open(STATE / "sandbox.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--state-dir", str(SANDBOX_DIR)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(
                    f"the sandbox did not start; see {STATE / 'sandbox.log'}:\n"
                    + (STATE / "sandbox.log").read_text()[-2000:]
                )
            time.sleep(0.1)
        endpoints = Endpoints.load(SANDBOX_DIR)
        say(f"sandbox: Kubernetes API {endpoints.kube_url}, BCS API {endpoints.bcs_url}")
        say(f"         kubectl: export KUBECONFIG={endpoints.kubeconfig}")
        return endpoints

    def airflow_env(self) -> dict:
        env = dict(os.environ)
        env.update(self.endpoints.environment())
        # The admin's password, chosen here so that the release tasks can be given a connection
        # to the REST API (they write their run's note through it).
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(self.passwords_file())
        env["AIRFLOW_CONN_BLUEGREEN_AIRFLOW_API"] = json.dumps(
            {"conn_type": "http", "host": API, "login": "admin", "password": self.password()}
        )
        env.update(
            {
                "AIRFLOW_HOME": str(AIRFLOW_HOME),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # loopback only: whoever reaches the api-server can log in and release
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(PORT),
                "AIRFLOW__API__BASE_URL": API,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
                # task processes start with what they import already loaded, and the scheduler's
                # idle sleep (as shipped)
                **forkserver_settings(),
                **scheduler_settings(),
            }
        )
        if BAD:
            env["BLUEGREEN_APPS_DIR"] = str(self.analysed_apps())
            env["AIRFLOW_CONN_SANDBOX_PROMETHEUS"] = json.dumps(
                {"conn_type": "http", "host": f"http://127.0.0.1:{PROMETHEUS_PORT}"}
            )
        return env

    @staticmethod
    def analysed_apps() -> Path:
        """dags/apps with the test app's config given an analysis (DEMO_BAD)."""
        import shutil

        import yaml

        apps = STATE / "apps"
        shutil.rmtree(apps, ignore_errors=True)
        shutil.copytree(ROOT / "dags" / "apps" / "test", apps / "test")
        raw = yaml.safe_load((ROOT / "dags" / "apps" / "test.yaml").read_text())
        (apps / "test.yaml").write_text(yaml.safe_dump({**raw, "analysis": ANALYSIS}, sort_keys=False))
        return apps

    def start_prometheus(self) -> None:
        from sandbox.prometheus import running_prometheus

        url = self.prometheus.enter_context(
            running_prometheus(self.endpoints.prometheus_config, PROMETHEUS_PORT, STATE / "prometheus")
        )
        say(f"Prometheus scrapes the sandbox's pods: {url} (data and log in {STATE / 'prometheus'})")

    def start_airflow(self):
        try:
            requests.get(f"{API}/api/v2/version", timeout=2)
            sys.exit(f"something already answers on {API}: stop it, or run with AIRFLOW_PORT=<free port>")
        except requests.RequestException:
            pass
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        log = open(STATE / "airflow.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            cwd=ROOT,
            env=self.airflow_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 240
        while True:
            try:
                if requests.get(f"{API}/api/v2/version", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"Airflow did not start; see {STATE / 'airflow.log'}")
            time.sleep(1)

    def stop(self):
        """SIGTERM each process group (Airflow's components and workers with it), wait until
        the group is empty, SIGKILL what is left after 60 s."""
        self.prometheus.close()
        for proc in reversed(self.procs):
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for proc in self.procs:
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                proc.poll()
                time.sleep(0.2)
            _signal_group(proc.pid, signal.SIGKILL)
            proc.poll()

    # -- REST ---------------------------------------------------------------------------
    @staticmethod
    def passwords_file() -> Path:
        path = AIRFLOW_HOME / "passwords.json"
        if not path.exists():
            import secrets

            AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
            path.chmod(0o600)
        return path

    def password(self) -> str:
        return json.loads(self.passwords_file().read_text())["admin"]

    def login(self):
        token = requests.post(
            f"{API}/auth/token", json={"username": "admin", "password": self.password()}, timeout=10
        ).json()["access_token"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def wait_for_dag(self):
        deadline = time.monotonic() + 180
        while True:
            resp = self.http.get(f"{API}/api/v2/dags/{DAG_ID}", timeout=10)
            if resp.ok:
                break
            if time.monotonic() > deadline:
                errors = self.http.get(f"{API}/api/v2/importErrors", timeout=10).json()
                sys.exit(f"the DAG {DAG_ID} did not show up; import errors: {errors}")
            time.sleep(2)
        self.http.patch(f"{API}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, timeout=10).raise_for_status()

    def release(self, image: str, note: str) -> dict:
        run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}__{image.rsplit(':', 1)[-1]}"
        self.http.post(
            f"{API}/api/v2/dags/{DAG_ID}/dagRuns",
            timeout=10,
            json={
                "dag_run_id": run_id,
                "logical_date": None,
                "note": note,
                "conf": {"image": image, "soak": "10s", "reason": note},
            },
        ).raise_for_status()
        last = None
        while True:
            run = self.http.get(f"{API}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", timeout=10).json()
            tis = self.http.get(f"{API}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", timeout=10).json()
            running = [t["task_id"] for t in tis.get("task_instances", []) if t["state"] in ("running", "deferred")]
            if running != last and running:
                say(f"   ... {', '.join(running)}")
                last = running
            if run["state"] in ("success", "failed"):
                run["task_instances"] = tis.get("task_instances", [])
                return run
            time.sleep(1)

    # -- the service port ----------------------------------------------------------------
    def node_port(self) -> int | None:
        import kubernetes

        api = kubernetes.config.new_client_from_config(config_file=str(self.endpoints.kubeconfig))
        try:
            svc = kubernetes.client.CoreV1Api(api).read_namespaced_service("test", "default")
        except kubernetes.client.ApiException:
            return None
        return svc.spec.ports[0].node_port

    def run(self):
        STATE.mkdir(exist_ok=True)
        step("Starting the sandbox cluster")
        self.endpoints = self.start_sandbox()
        if BAD:
            step("Starting Prometheus (DEMO_BAD: the release is judged by its metrics too)")
            self.start_prometheus()
            smoke_stop = threading.Event()
            threading.Thread(target=self.smoke_tests, args=(smoke_stop,), daemon=True).start()
            self.prometheus.callback(smoke_stop.set)
        step(f"Starting Airflow (airflow standalone) on {API}; log in {STATE / 'airflow.log'}")
        self.start_airflow()
        self.login()
        self.wait_for_dag()
        say(f"DAG {DAG_ID} is up (from dags/apps/test.yaml)")

        if self.node_port() is None:
            step(f"First release of the test app: {IMAGES[0]} (no Service yet: deploys blue, creates the Service)")
            run = self.release(IMAGES[0], "demo: first release")
            self.report(run)

        port = self.node_port()
        url = f"http://127.0.0.1:{port}/"
        before = requests.get(url, timeout=5).json()
        live_image = before["image"]
        new_image = IMAGES[1] if live_image != IMAGES[1] else IMAGES[0]
        step(f"Blue-green release of {new_image} while a client sends requests to the Service port {port}")
        say(f"before: the Service port served {before['deployment']} ({before['color']}) {before['image']}")
        served, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                try:
                    answer = requests.get(url, timeout=5, headers={"Connection": "close"}).json()
                    served.append(f"{answer['deployment']} {answer['image']}")
                except (requests.RequestException, ValueError) as e:
                    served.append(f"FAILED {type(e).__name__}")
                stop.wait(0.05)

        thread = threading.Thread(target=client, daemon=True)
        control = requests.Session()
        control.headers["Authorization"] = f"Bearer {self.endpoints.token}"
        control.post(f"{self.endpoints.control_url}/requests/reset", timeout=10).raise_for_status()
        thread.start()
        run = self.release(new_image, f"demo: release {new_image}")
        counts = control.get(f"{self.endpoints.control_url}/requests", timeout=10).json()["requests"]
        stop.set()
        thread.join()
        after = requests.get(url, timeout=5).json()
        say(f"after:  the Service port serves {after['deployment']} ({after['color']}) {after['image']}")
        flips = [served[0]] + [b for a, b in zip(served, served[1:], strict=False) if a != b] if served else []
        failed = sum(1 for s in served if s.startswith("FAILED"))
        say(
            f"during the release: {len(served)} requests, {failed} failed; what answered, in order: "
            f"{' -> '.join(flips)}"
        )
        self.report(run)
        self.measure(run, counts)
        if BAD:
            self.release_bad(url)

        step("Airflow UI")
        # the password stays in its file (mode 600), out of terminals and CI logs
        say(f"open {API}  (user: admin, password: the \"admin\" entry of {self.passwords_file()})")
        say(f"the release DAG: {API}/dags/{DAG_ID}")
        say(f"kubectl: KUBECONFIG={self.endpoints.kubeconfig} .venv/bin/kubectl get deploy,svc,pods")

    def smoke_tests(self, stop: threading.Event) -> None:
        """What testers do before a switch, all along (DEMO_BAD): requests straight to the test app's
        pods, whichever color (the sandbox lists them in its Prometheus targets)."""
        while not stop.is_set():
            try:
                targets = json.loads(self.endpoints.prometheus_targets.read_text())
            except (OSError, ValueError):
                targets = []
            for group in targets:
                labels = group["labels"]
                if labels["namespace"] == "default" and labels["deployment"].startswith("test-"):
                    with contextlib.suppress(requests.RequestException):
                        requests.get(f"http://{group['targets'][0]}/", timeout=2)
            stop.wait(0.1)

    def release_bad(self, url: str) -> None:
        live = requests.get(url, timeout=5).json()["image"]
        step(f"DEMO_BAD: releasing {BAD_IMAGE} (one answer in five is a 500; readiness passes)")
        served, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                try:
                    served.append(requests.get(url, timeout=5, headers={"Connection": "close"}).json()["image"])
                except (requests.RequestException, ValueError) as e:
                    served.append(f"FAILED {type(e).__name__}")
                stop.wait(0.05)

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        run = self.release(BAD_IMAGE, f"demo: release {BAD_IMAGE}")
        stop.set()
        thread.join()
        failure = self.http.get(
            f"{API}/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/wait_until_ready/xcomEntries/failure",
            timeout=10,
        )
        self.report(run)
        if failure.ok:
            say(f"what stopped it (wait_until_ready): {failure.json().get('value')}")
        wrong = [s for s in served if s != live]
        say(
            f"during the bad release: {len(served)} requests through the Service, all answered by {live}"
            if not wrong
            else f"during the bad release: {len(wrong)} of {len(served)} answers not from {live}"
        )

    def measure(self, run: dict, counts: list[dict]) -> None:
        """Airflow's overhead: the run's wall time minus the waits that belong to the release
        itself (the pods' readiness delay and the soak)."""
        from datetime import datetime

        def ts(value):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

        wall = ts(run["end_date"]) - ts(run["start_date"])
        ready_after = 1.0  # the sandbox's default readiness delay of a pod
        soak = 10.0  # the soak this demo asks for
        if BAD:  # and the analysis of the new color before the switch
            soak += 10.0
        kube = [r for r in counts if r["api"] == "kube"]
        calls = ", ".join("{} {} x{}".format(r["method"], r["path"], r["count"]) for r in kube)
        say(
            f"measured: wall time {wall:.1f}s; minus the pods' readiness ({ready_after:g}s) and the soak ({soak:g}s"
            f"{', with the analysis before the switch' if BAD else ''}): "
            f"{wall - ready_after - soak:.1f}s of Airflow overhead"
        )
        say(f"          {sum(r['count'] for r in kube)} Kubernetes API requests: {calls}")

    def report(self, run: dict) -> None:
        say(f"run {run['dag_run_id']}: {run['state'].upper()}")
        note = self.http.get(f"{API}/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", timeout=10).json().get("note")
        if note:
            say("   note: " + note.replace("\n", "\n         "))
        for ti in sorted(run["task_instances"], key=lambda t: t.get("start_date") or "9"):
            duration = f"{ti['duration']:.1f}s" if ti.get("duration") else "-"
            say(f"   {ti['task_id']:<18} {ti['state'] or '-':<16} {duration}")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def main():
    demo = Demo()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM too
    try:
        demo.run()
        if os.environ.get("DEMO_EXIT") != "1":
            say("\nEverything keeps running; press Ctrl-C to stop the sandbox and Airflow.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        step("Stopping")
        demo.stop()


if __name__ == "__main__":
    main()
