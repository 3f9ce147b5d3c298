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
BENCH_JSON=<path> (the results as JSON).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOT = 7

# The tests' stack re-parses the DAG file every 3 s (a config a test writes becomes a DAG at once)
# and caps the LocalExecutor at 8 processes (4 test workers share 2 cores).  The benchmark measures
# what a production install runs: Airflow's defaults for both (30 s; 32).
PRODUCTION_SETTINGS: dict[str, str | None] = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": None,
    "AIRFLOW__CORE__PARALLELISM": None,
}


def release_bench() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bluegreen-bench-"))
    from conftest import SandboxProcess  # the launcher the tests use
    from services.conftest import running_services

    from .release import BenchConfig, render, run_benchmark

    config = BenchConfig.from_env()
    base = Path(tempfile.mkdtemp(prefix="bluegreen-bench-stack-"))
    sandbox = SandboxProcess(base / "sandbox" / "state", index=SLOT, ready_after=config.ready_after)
    endpoints = sandbox.start()
    try:
        with running_services(base / "airflow", endpoints.environment(), settings=PRODUCTION_SETTINGS) as services:
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
