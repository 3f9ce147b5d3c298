"""``make bench``: the release benchmark (benchmarks/release.py says what each figure is and how it
is measured); ``python -m benchmarks readiness``: the first benchmark, readiness by watch against
polling (benchmarks/readiness.py); ``python -m benchmarks releases_page``: the Releases page's load time
with 50 apps (benchmarks/releases_page.py).

Starts a sandbox (slot 7: ports and loopback addresses no test run uses) and the Airflow services
stack the services tests run (tests/services/conftest.py: api-server, scheduler, dag-processor,
triggerer; LocalExecutor on a fresh PostgreSQL database, dropped afterwards), runs the benchmark,
prints the table and, last, the ``bench: ...`` line.

Environment: BENCH_N="1,5,20", BENCH_PLATFORMS="kubernetes,bcs", BENCH_SOAK=10 (s),
BENCH_DEFER_SOAK=300 (s; 0 skips the deferral phase), BENCH_READY_AFTER=1 (s), BENCH_REPLICAS=2,
BENCH_JSON=<path> (the results as JSON), BENCH_IDLE_SLEEP (s: the scheduler's idle sleep instead of the
shipped one), BENCH_FLOOR=0 (no Airflow floor phase).

The services read a DAG folder of the benchmark's own: dags/release_apps.py (the release DAGs) and
benchmarks/floor_dags.py (the Airflow floor: a release's graph whose tasks only wait).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bluegreen.provider import scheduler_settings

ROOT = Path(__file__).resolve().parents[1]
SLOT = 7

# The tests' stack re-parses the DAG file every 3 s (a config a test writes becomes a DAG at once),
# caps the LocalExecutor at 8 processes and lets the idle scheduler sleep 0.5 s (4 test workers
# share 2 cores).  The benchmark measures what a production install runs: Airflow's defaults for
# the first two (30 s; 32), the scheduler's idle sleep as shipped (bluegreen.provider).
PRODUCTION_SETTINGS: dict[str, str | None] = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": None,
    "AIRFLOW__CORE__PARALLELISM": None,
    **scheduler_settings(),
}


def production_settings() -> dict[str, str | None]:
    """PRODUCTION_SETTINGS, and BENCH_IDLE_SLEEP (the scheduler's idle sleep, s) when it is set."""
    settings = dict(PRODUCTION_SETTINGS)
    if os.environ.get("BENCH_IDLE_SLEEP"):
        settings["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] = os.environ["BENCH_IDLE_SLEEP"]
    return settings


def release_bench() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bluegreen-bench-"))
    from conftest import SandboxProcess  # the launcher the tests use
    from services.conftest import running_services

    from .release import BenchConfig, render, run_benchmark

    config = BenchConfig.from_env()
    config.floor = os.environ.get("BENCH_FLOOR", "1") != "0"
    base = Path(tempfile.mkdtemp(prefix="bluegreen-bench-stack-"))
    dags = base / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "release_apps.py", dags / "release_apps.py")
    settings = production_settings()
    if config.floor:
        shutil.copy(ROOT / "benchmarks" / "floor_dags.py", dags / "floor_dags.py")
        settings.update(
            BENCH_FLOOR_DAGS=str(max(config.ns)),
            BENCH_FLOOR_READY=str(config.ready_after),
            BENCH_FLOOR_SOAK=str(config.soak),
        )
    settings["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    sandbox = SandboxProcess(base / "sandbox" / "state", index=SLOT, ready_after=config.ready_after)
    endpoints = sandbox.start()
    try:
        with running_services(base / "airflow", endpoints.environment(), settings=settings) as services:
            assert sandbox.proc is not None
            results = run_benchmark(services, endpoints, config, sandbox.proc.pid)
    finally:
        sandbox.stop()
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(results, indent=1, default=str))
    print(render(results))


def main() -> None:
    if sys.argv[1:2] == ["readiness"]:
        from . import readiness

        readiness.main()
    elif sys.argv[1:2] == ["releases_page"]:
        from . import releases_page

        releases_page.main(SLOT)
    elif sys.argv[1:]:
        raise SystemExit("usage: python -m benchmarks [readiness | releases_page]")
    else:
        release_bench()


if __name__ == "__main__":
    main()
