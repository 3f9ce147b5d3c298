"""``python -m chaos`` (``make chaos``): randomized blue-green releases under faults, on both
platforms, with the invariants checked; see chaos/README.md."""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    p.add_argument("--seed", type=int, default=None, help="the first run's seed (runs take seed, seed+1, ...)")
    p.add_argument("--runs", type=int, default=200, help="how many runs (default 200)")
    p.add_argument("--concurrency", type=int, default=8, help="direct runs at a time (default 8)")
    p.add_argument("--airflow-lanes", type=int, default=2, help="Airflow runs at a time (default 2)")
    p.add_argument("--direct-only", action="store_true", help="drive every run directly (no Airflow services)")
    p.add_argument(
        "--slot",
        type=int,
        default=int(os.environ.get("CHAOS_SLOT", 6)),
        help="the sandbox's port and loopback slot (tests/conftest.py SandboxProcess; default 6)",
    )
    p.add_argument("--work-dir", type=Path, default=None, help="where run logs and records go (default .chaos/<seed>)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    from . import env

    env.importable()
    from .session import Session

    work = args.work_dir or Path(tempfile.gettempdir()) / "bluegreen-chaos" / str(seed)
    work.mkdir(parents=True, exist_ok=True)
    print(f"chaos: {args.runs} runs from seed {seed}; logs and records in {work}", flush=True)
    started = time.time()
    with Session(work, slot=args.slot) as session:
        results = session.run(
            seed,
            args.runs,
            concurrency=args.concurrency,
            airflow_lanes=args.airflow_lanes,
            direct_only=args.direct_only,
        )
    from .report import render

    print(render(results, seed, time.time() - started), flush=True)
    bad = sum(len(r.violations) for r in results) + sum(1 for r in results if r.error)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
