"""What the release benchmark measures with, besides Airflow's REST API.

CPU: :class:`CpuMeter` reads ``utime + stime + cutime + cstime`` (psutil's ``cpu_times()``, i.e.
``/proc/<pid>/stat``) of every process in each component's tree, before and after a phase.  A
process that ends during the phase and is reaped by its parent moves its whole lifetime's CPU into
the parent's ``cutime/cstime``; its share from before the phase was in the "before" sum, so the
difference counts it once.  Task processes are reaped by the LocalExecutor's workers (which
supervise them), the workers by the scheduler: the ``tasks`` component is every descendant of the
scheduler plus the scheduler's own children times; ``scheduler`` is the scheduler's own
``utime + stime``.  A process reaped by something outside the tree (re-parented to init) would be
lost; none is in this stack.

API requests: :class:`RequestSampler` reads the sandbox's request counts (``GET /requests`` on the
control endpoint: front end, method and path; the query string is not kept, so a watch and a list
of the same collection look alike) every ``interval`` seconds during a phase, so that each
increment can be put on the release (by the namespace in its path) and the task that was running
then (by the task instances' start and end).  A path is reduced to a template: the namespace,
the cluster ID and the app's object names (``test``, ``test-*``) become ``{ns}``, ``{cluster}``,
``{name}``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import requests

# -- CPU --------------------------------------------------------------------------------------


def _times(proc) -> tuple[float, float]:
    """(own utime + stime, reaped children's cutime + cstime) of one process."""
    t = proc.cpu_times()
    return t.user + t.system, getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)


def tree_cpu(pid: int) -> tuple[float, float]:
    """(the root's own CPU, everything else: the root's reaped children and every live descendant)."""
    import psutil

    try:
        root = psutil.Process(pid)
        own, reaped = _times(root)
        children = root.children(recursive=True)
    except psutil.Error:
        return 0.0, 0.0
    rest = reaped
    for child in children:
        try:
            a, b = _times(child)
        except psutil.Error:  # ended between the listing and the read: its parent has it (or will)
            continue
        rest += a + b
    return own, rest


class CpuMeter:
    """CPU-seconds by component between ``snapshot()`` calls.  ``roots``: component -> root pid.
    The scheduler is split in two: ``scheduler`` (its own process) and ``tasks`` (its workers and
    the task processes they run)."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots

    def snapshot(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.roots.items():
            own, rest = tree_cpu(pid)
            if name == "scheduler":
                out["scheduler"] = own
                out["tasks"] = rest
            else:
                out[name] = own + rest
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 3) for k in after}


def find_sandbox_pid(state_dir) -> int | None:
    """The sandbox process serving ``state_dir`` (a descendant of this process), for the tests'
    session sandbox, whose launcher the fixture does not hand out."""
    import psutil

    want = str(state_dir)
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if "sandbox" in cmd and want in cmd:
            return proc.pid
    return None


# -- API requests -------------------------------------------------------------------------------

PREFIXES = ("/api/v1/", "/bcsapi/v4/")
SHORTER = (
    ("namespaces/{ns}/", ""),
    ("mesos/dynamic/", ""),
    ("clusters/{cluster}/", ""),
    ("scheduler/mesos/", "scheduler/"),
)


def template(path: str, cluster_id: str) -> tuple[str, str | None]:
    """(``path`` with namespace, cluster and object names replaced, the namespace or None)."""
    parts = path.strip("/").split("/")
    ns = None
    out = []
    for i, seg in enumerate(parts):
        prev = parts[i - 1] if i else ""
        if prev == "namespaces":
            ns = seg
            out.append("{ns}")
        elif seg == cluster_id:
            out.append("{cluster}")
        elif seg == "test" or seg.startswith("test-"):
            out.append("{name}")
        else:
            out.append(seg)
    text = "/" + "/".join(out)
    if text.startswith("/apis/"):  # /apis/<group>/<version>/...: keep the group, drop the version
        group = out[1] if len(out) > 1 else ""
        text = f"{group.split('.')[0]}/" + "/".join(out[3:])
    else:
        for prefix in PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix) :]
    # BCS: the definition endpoint names the namespace by position, not after "namespaces"
    if "/definition/" in path and len(parts) >= 2:
        ns = parts[-2]
        text = text.replace(f"/{parts[-2]}/", "/{ns}/")
    for long, short in SHORTER:
        text = text.replace(long, short)
    return text, ns


def counts_of(rows: list[dict]) -> Counter:
    return Counter({(r["api"], r["method"], r["path"]): int(r["count"]) for r in rows})


@dataclass
class Sample:
    at: float
    counts: Counter


@dataclass
class RequestSampler:
    """Samples the sandbox's request counts in a thread; ``start()`` resets them."""

    control_url: str
    token: str
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self):
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> Counter:
        return counts_of(self.http.get(f"{self.control_url}/requests", timeout=10).json()["requests"])

    def start(self) -> None:
        self.http.post(f"{self.control_url}/requests/reset", timeout=10).raise_for_status()
        self.samples = [Sample(time.time(), Counter())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="request-sampler")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(Sample(time.time(), self.read()))
            except requests.RequestException:
                continue

    def stop(self) -> Counter:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        final = self.read()
        self.samples.append(Sample(time.time(), final))
        return final


Window = tuple[str, str, float, float]  # (namespace, task, start, end)


def attribute(samples: list[Sample], windows: list[Window], cluster_id: str) -> dict[tuple[str, str, str, str], float]:
    """Each sample's increments put on (namespace, task, method, template).  A namespaced request
    is shared among that namespace's tasks that ran during the sample's interval, by overlap (the
    nearest one if none did); a request without a namespace in its path (Kubernetes'
    selfsubjectaccessreviews, BCS storage queries: the namespace is in the body) is shared among
    all the tasks running then, by overlap.
    What no task window comes near is put on task ``-``."""
    by_ns: dict[str, list[Window]] = defaultdict(list)
    for w in windows:
        by_ns[w[0]].append(w)
    out: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for before, after in zip(samples, samples[1:], strict=False):
        lo, hi = before.at, after.at
        inc = after.counts - before.counts
        if not inc:
            continue

        def overlap(w: Window, lo: float = lo, hi: float = hi) -> float:
            return max(0.0, min(hi, w[3]) - max(lo, w[2]))

        def distance(w: Window, lo: float = lo, hi: float = hi) -> float:
            return 0.0 if overlap(w) > 0 else min(abs(lo - w[3]), abs(w[2] - hi))

        active = [(w, overlap(w)) for w in windows if overlap(w) > 0]
        for (api, method, path), n in inc.items():
            tpl, ns = template(path, cluster_id)
            key_rest = (f"{api} {method}", tpl)
            mine = by_ns.get(ns or "", [])
            shares = [(w, o) for w, o in active if w in mine] if mine else active
            if mine and not shares:
                best = min(mine, key=distance)
                out[(best[0], best[1], *key_rest)] += n
            elif shares:
                total = sum(o for _, o in shares)
                for w, o in shares:
                    out[(w[0], w[1], *key_rest)] += n * o / total
            elif windows:
                best = min(windows, key=distance)
                out[(best[0], best[1], *key_rest)] += n
            else:
                out[(ns or "-", "-", *key_rest)] += n
    return dict(out)


# What the soak reads of the workload (its watch or its polling), as opposed to the Service:
WORKLOAD = ("deployments", "replicasets", "pods", "endpoints", "taskgroup", "application", "deployment")


def is_soak_observation(task: str, verb: str, tpl: str) -> bool:
    """A request the soak made to watch (or poll) the new color's workload, or to watch its Service
    (Kubernetes: the list and the watch of the collection); its reads of the Service by name and
    its writes are not."""
    if task != "soak":
        return False
    method = verb.split(" ", 1)[1]
    if method not in ("GET", "POST") or (method == "POST" and "storage" not in tpl):
        return False
    segments = tpl.split("/")
    return any(s in WORKLOAD for s in segments) or (method == "GET" and segments[-1] == "services")
