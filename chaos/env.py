"""Where the chaos suite runs: the sandbox, the Airflow connections the releases use, and the
project's own test harness (reused, not copied).

The chaos connections are the sandbox's, with short timeouts, so that an API that hangs costs
a release seconds, not minutes:

  chaos_k8s   the sandbox's Kubernetes connection, extra ``request_timeout`` (3 s)
  chaos_bcs   the sandbox's BCS connection, extra ``timeout`` (3 s)
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

K8S_CONN, BCS_CONN = "chaos_k8s", "chaos_bcs"
REQUEST_TIMEOUT = 3.0


def importable() -> None:
    """The test harness (tests/e2e, tests/services) imports as the test suite imports it."""
    for path in (str(ROOT), str(TESTS)):
        if path not in sys.path:
            sys.path.insert(0, path)


def tests_conftest():
    """tests/conftest.py (SandboxProcess, Control, worker_index): the module pytest loaded when
    under pytest, else loaded once from its file."""
    loaded = sys.modules.get("conftest")
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == TESTS / "conftest.py":
        return loaded
    name = "chaos_tests_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def airflow_home() -> None:
    """An Airflow home of our own (as tests/conftest.py's pytest_configure makes one), unless one is set."""
    if not os.environ.get("AIRFLOW_HOME"):
        os.environ.update(tests_conftest().airflow_environment("bluegreen-chaos-airflow-"))


def chaos_connections(endpoints, timeout: float = REQUEST_TIMEOUT) -> dict[str, dict]:
    """The sandbox's connections under the chaos ids, with short per-request timeouts."""
    from sandbox.server import BCS_CONN_ID, K8S_CONN_ID

    conns = endpoints.connections()
    k8s, bcs = json.loads(json.dumps(conns[K8S_CONN_ID])), json.loads(json.dumps(conns[BCS_CONN_ID]))
    k8s["extra"]["request_timeout"] = timeout
    bcs["extra"]["timeout"] = timeout
    return {K8S_CONN: k8s, BCS_CONN: bcs}


def connection_env(endpoints, timeout: float = REQUEST_TIMEOUT) -> dict[str, str]:
    env = dict(endpoints.environment())
    env.update(
        {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(doc) for cid, doc in chaos_connections(endpoints, timeout).items()}
    )
    return env


def use_sandbox(endpoints) -> None:
    """Point this process (and the step processes it forks from now on) at the sandbox."""
    airflow_home()
    os.environ.update(connection_env(endpoints))
