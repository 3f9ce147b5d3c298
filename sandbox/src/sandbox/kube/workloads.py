"""The deployment controller, the replica set controller and the kubelet's view of pods.

Deployments are reconciled as pkg/controller/deployment does it (rolling.go, recreate.go,
sync.go, progress.go, util/deployment_util.go): one ReplicaSet per pod template named
``<deployment>-<pod-template-hash>``, surge/unavailable arithmetic, status and conditions
with the real reasons and messages.  A ReplicaSet runs a runtime pod group; every
runtime pod is mirrored as a v1 Pod object, so pod changes reach watchers at once.

Pod faults from the control endpoint show as the kubelet reports them: a killed
container is ``terminated`` (exit code 137) until it is restarted, then ``running`` with
restartCount + 1 and the old one under ``lastState``; an evicted pod is stopped at once
and its Pod object stays behind in phase Failed, reason Evicted, with a DisruptionTarget
condition (pkg/kubelet/eviction), while its ReplicaSet starts a replacement.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from typing import TYPE_CHECKING

from . import resources as R
from .selectors import from_label_selector
from .store import Event, new_uid, now_iso

if TYPE_CHECKING:
    from .cluster import Cluster

from sandbox.runtime.pod import GONE, PENDING, TERMINATING, Pod, PodSpec

log = logging.getLogger(__name__)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# What the kubelet's eviction manager writes (pkg/kubelet/eviction/helpers.go formats: the
# node-low message, the threshold and the container's usage; the quantities are made up).
EVICTED = "Evicted"
EVICTION_MESSAGE = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
    "Container {container} was using 180Mi, request is 0, has larger consumption of memory. "
)
# rand.SafeEncodeString's alphabet: no vowels, no confusable characters.
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_iso(text: str) -> float:
    import calendar

    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def template_hash(template: dict) -> str:
    """fnv32a over the template, rendered with SafeEncodeString (controller.ComputeHash)."""
    t = copy.deepcopy(template)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    h = 0x811C9DC5
    for b in json.dumps(t, sort_keys=True, separators=(",", ":")).encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(ALPHABET[ord(c) % len(ALPHABET)] for c in str(h))


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(ALPHABET) for _ in range(n))


def controller_of(obj: dict) -> dict | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def owner_ref(obj: dict, kind: str, api_version: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def resolve(value, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def max_surge_unavailable(d: dict) -> tuple[int, int]:
    spec = d["spec"]
    replicas = spec.get("replicas", 1)
    if spec.get("strategy", {}).get("type") != "RollingUpdate":
        return 0, 0
    ru = spec["strategy"].get("rollingUpdate") or {}
    surge = resolve(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the API forbids both 0; resolution can still round both down
    return surge, min(unavailable, replicas)


def _neg_time(rs: dict) -> tuple:
    """Sort key putting newer ReplicaSets first (timestamps are ISO strings)."""
    return tuple(-ord(c) for c in rs["metadata"]["creationTimestamp"])


def _drop_zeros(status: dict, keep: tuple[str, ...] = ()) -> dict:
    """omitempty: zero counts are not written (the Python client then reads None)."""
    return {k: v for k, v in status.items() if v not in (0, None, [], {}) or k in keep}


class PodRecord:
    """What the sandbox's kubelet remembers about a runtime pod."""

    def __init__(self, pod: Pod, namespace: str, rs: dict, template: dict):
        self.pod = pod
        self.namespace = namespace
        self.uid = new_uid()
        self.created = now_iso()
        self.rs_name = rs["metadata"]["name"]
        self.owner = owner_ref(rs, "ReplicaSet", "apps/v1")
        self.template = copy.deepcopy(template)
        self.ready = False
        self.ready_changed = self.created
        self.started = None
        self.deletion_timestamp: str | None = None
        self.grace = 30
        self.container_id = _container_id()
        self.last_container_id = ""  # the container before the last restart
        self.seen_restarts = 0
        self.evicted: str | None = None  # the eviction message, once evicted


def _container_id() -> str:
    return "containerd://" + "".join(random.choice("0123456789abcdef") for _ in range(64))


class Workloads:
    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.groups: dict[tuple[str, str], object] = {}  # (ns, rs name) -> PodGroup
        self.records: dict[str, PodRecord] = {}  # runtime pod name -> record
        self.evicted: dict[tuple[str, str], PodRecord] = {}  # (ns, pod) -> evicted pods whose object stays
        cluster.runtime.evictors["kube"] = self.evict

    # -- event routing ------------------------------------------------------------------
    def on_event(self, resource: R.Resource, event: Event) -> None:
        meta = event.obj["metadata"]
        ns = meta.get("namespace", "")
        if resource is R.DEPLOYMENTS:
            self.c.deployments.add((ns, meta["name"]))
        elif resource is R.REPLICASETS:
            self.c.replicasets.add((ns, meta["name"]))
            ref = controller_of(event.obj) or (controller_of(event.old) if event.old else None)
            if ref and ref.get("kind") == "Deployment":
                self.c.deployments.add((ns, ref["name"]))
            elif event.type != "DELETED":
                # an orphan may be adopted by a deployment whose selector matches it
                for d in self.c.store.list(R.DEPLOYMENTS, ns):
                    self.c.deployments.add((ns, d["metadata"]["name"]))

    # -- replica sets -------------------------------------------------------------------
    def sync_replicaset(self, key: tuple[str, str]) -> None:
        ns, name = key
        rs = self.c.store.peek(R.REPLICASETS, ns, name)
        group = self.groups.get(key)
        if rs is None:
            if group is not None:
                self._stop_group(key)
            return
        if group is None:
            group = self._start_group(rs)
        group.scale(rs["spec"].get("replicas", 1) if not rs["metadata"].get("deletionTimestamp") else 0)
        self._write_rs_status(rs, group)

    def _start_group(self, rs: dict):
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        template = rs["spec"]["template"]
        containers = template["spec"]["containers"]
        ports = [
            {"containerPort": p["containerPort"], "name": p.get("name", "")}
            for c in containers
            for p in c.get("ports") or []
        ]
        ref = controller_of(rs)
        workload = ref["name"] if ref and ref.get("kind") == "Deployment" else name
        spec = PodSpec(
            image=containers[0]["image"],
            labels=dict(template["metadata"].get("labels") or {}),
            container_ports=ports,
            workload=workload,
            namespace=ns,
            platform="kubernetes",
        )

        def name_pod(_index: int) -> str:
            while True:
                candidate = f"{name}-{random_suffix()}"
                if candidate not in self.c.runtime.pods and self.c.store.peek(R.PODS, ns, candidate) is None:
                    return candidate

        def on_change(pod: Pod) -> None:
            self._pod_changed(pod, ns, name)

        runtime_key = f"kube/{ns}/{name}"
        if runtime_key in self.c.runtime.groups:  # a RS re-created with the same name
            self.c.runtime.drop_group(runtime_key)
        group = self.c.runtime.group(runtime_key, spec, name_pod, on_change)
        group.rs_uid = rs["metadata"]["uid"]
        self.groups[(ns, name)] = group
        return group

    def _stop_group(self, key: tuple[str, str]) -> None:
        group = self.groups.get(key)
        if group is None:
            return
        for pod in list(group.pods):
            self._mark_deleting(pod)
        group.delete()
        if group.gone:
            self.groups.pop(key, None)
            self.c.runtime.drop_group(group.key)

    def _write_rs_status(self, rs: dict, group) -> None:
        min_ready = rs["spec"].get("minReadySeconds", 0)
        now = time.time()
        live = [p for p in group.pods]
        ready = [p for p in live if p.ready]
        available = [p for p in ready if p.ready_since is not None and now - p.ready_since >= min_ready]
        if min_ready:
            for p in ready:
                if p not in available and p.ready_since is not None:
                    self.c.replicasets.later(
                        (rs["metadata"]["namespace"], rs["metadata"]["name"]), p.ready_since + min_ready - now + 0.01
                    )
        labels = rs["spec"]["template"]["metadata"].get("labels") or {}
        status = {
            "replicas": len(live),
            "fullyLabeledReplicas": sum(1 for p in live if all(p.labels.get(k) == v for k, v in labels.items())),
            "readyReplicas": len(ready),
            "availableReplicas": len(available),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        new = copy.deepcopy(rs)
        new["status"] = _drop_zeros(status, keep=("replicas",))
        self.c.store.update(R.REPLICASETS, new)

    # -- pods ---------------------------------------------------------------------------
    def _pod_changed(self, pod: Pod, ns: str, rs_name: str) -> None:
        record = self.records.get(pod.name)
        if record is None and pod.state != GONE:
            rs = self.c.store.peek(R.REPLICASETS, ns, rs_name)
            if rs is None:
                return
            record = PodRecord(pod, ns, rs, rs["spec"]["template"])
            self.records[pod.name] = record
        if record is not None and pod.ready != record.ready:
            record.ready = pod.ready
            record.ready_changed = now_iso()
        if record is not None and pod.restart_count != record.seen_restarts:
            # a restarted container is a new container
            record.seen_restarts = pod.restart_count
            record.last_container_id, record.container_id = record.container_id, _container_id()
        if pod.state == GONE:
            self.records.pop(pod.name, None)
            if record is not None and record.evicted:
                # the kubelet is done with it; the Failed pod object stays until someone deletes it
                self.evicted[(ns, pod.name)] = record
                if self.c.store.peek(R.PODS, ns, pod.name) is not None:
                    self.c.store.update(R.PODS, self.pod_object(record))
            else:
                self.c.store.delete(R.PODS, ns, pod.name)
            rs = self.c.store.peek(R.REPLICASETS, ns, rs_name)
            owner = controller_of(rs) if rs is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                self.c.deployments.add((ns, owner["name"]))  # Recreate waits for old pods to be gone
            key = (ns, rs_name)
            group = self.groups.get(key)
            if group is not None and group.gone and self.c.store.peek(R.REPLICASETS, ns, rs_name) is None:
                self.groups.pop(key, None)
                self.c.runtime.drop_group(group.key)
                self.c._maybe_finish_namespace(ns)
        else:
            if pod.state == TERMINATING and record.deletion_timestamp is None and not record.evicted:
                self._mark_deleting(pod)
            obj = self.pod_object(record)
            if self.c.store.peek(R.PODS, ns, pod.name) is None:
                self.c.store.create(R.PODS, obj)
            else:
                self.c.store.update(R.PODS, obj)
        self.c.replicasets.add((ns, rs_name))
        self.c.endpoints.add(ns)

    def _mark_deleting(self, pod: Pod, grace: int | None = None) -> None:
        record = self.records.get(pod.name)
        if record is not None and record.deletion_timestamp is None:
            record.grace = record.template["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
            record.deletion_timestamp = iso(time.time() + record.grace)

    def evict(self, group, pod: Pod) -> None:
        """The kubelet evicts the pod (node pressure, hard threshold: no grace period): its
        status turns Failed/Evicted, its container is stopped now, and its ReplicaSet, which
        does not count a failed pod, starts a replacement."""
        record = self.records.get(pod.name)
        if record is None:
            return
        record.evicted = EVICTION_MESSAGE.format(container=record.template["spec"]["containers"][0]["name"])
        group.pods.remove(pod)
        group.terminating.append(pod)
        pod.deletion_requested_at = 0.0  # stop at once, whatever the image's slow-stop
        pod.wake()
        rs = self.c.store.peek(R.REPLICASETS, record.namespace, record.rs_name)
        if rs is not None and not rs["metadata"].get("deletionTimestamp"):
            group.scale(group.replicas)
        self._pod_changed(pod, record.namespace, record.rs_name)

    def delete_pod(self, ns: str, name: str, grace: int | None) -> dict | None:
        """DELETE of a pod: it turns terminating now and goes when its container has
        stopped; its ReplicaSet starts a replacement at once.  An evicted pod has nothing
        left to stop: it goes at once."""
        gone = self.evicted.pop((ns, name), None)
        if gone is not None:
            obj = self.c.store.get(R.PODS, ns, name)
            self.c.store.delete(R.PODS, ns, name)
            if obj is not None:
                obj["metadata"].update(deletionTimestamp=now_iso(), deletionGracePeriodSeconds=0)
            return obj
        record = self.records.get(name)
        if record is None or record.namespace != ns:
            return None
        pod = record.pod
        self._mark_deleting(pod, grace)
        group = self.groups.get((ns, record.rs_name))
        if group is not None and pod in group.pods:
            # PodGroup has no "delete this pod": move it to terminating as scale() would
            group.pods.remove(pod)
            group.terminating.append(pod)
            if grace == 0:
                pod.deletion_requested_at = 0.0
                pod.wake()  # terminate() below sees a deletion already requested and does nothing
            pod.terminate()
            rs = self.c.store.peek(R.REPLICASETS, ns, record.rs_name)
            if rs is not None and not rs["metadata"].get("deletionTimestamp"):
                group.scale(group.replicas)  # the ReplicaSet replaces it
            else:
                group.scale(len(group.pods))
        else:
            pod.terminate()
        self._pod_changed(pod, ns, record.rs_name)
        return self.c.store.get(R.PODS, ns, name)

    def pod_object(self, record: PodRecord) -> dict:
        pod = record.pod
        t = record.template
        labels = dict(t["metadata"].get("labels") or {})
        meta = {
            "name": pod.name,
            "generateName": record.rs_name + "-",
            "namespace": record.namespace,
            "uid": record.uid,
            "generation": 1,
            "creationTimestamp": record.created,
            "labels": labels,
        }
        if t["metadata"].get("annotations"):
            meta["annotations"] = dict(t["metadata"]["annotations"])
        meta["ownerReferences"] = [record.owner]
        if record.deletion_timestamp:
            meta["deletionTimestamp"] = record.deletion_timestamp
            meta["deletionGracePeriodSeconds"] = record.grace
        spec = copy.deepcopy(t["spec"])
        spec["nodeName"] = "sandbox"
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        )
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": self._pod_status(record)}

    def _pod_status(self, record: PodRecord) -> dict:
        pod = record.pod
        created = record.created
        started = iso(pod.started_at) if pod.started_at else None
        running = pod.state != PENDING
        behaviour = pod.behaviour
        ready = pod.ready
        rc = "True" if ready else "False"
        not_ready_reason = {
            "reason": "ContainersNotReady",
            "message": "containers with unready status: ["
            + " ".join(c["name"] for c in record.template["spec"]["containers"])
            + "]",
        }
        conditions = [
            {
                "type": "PodReadyToStartContainers",
                "status": "True" if running else "False",
                "lastProbeTime": None,
                "lastTransitionTime": started or created,
            },
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": created},
            {
                "type": "Ready",
                "status": rc,
                "lastProbeTime": None,
                "lastTransitionTime": record.ready_changed,
                **({} if ready else not_ready_reason),
            },
            {
                "type": "ContainersReady",
                "status": rc,
                "lastProbeTime": None,
                "lastTransitionTime": record.ready_changed,
                **({} if ready else not_ready_reason),
            },
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": created},
        ]
        statuses = []
        for c in record.template["spec"]["containers"]:
            st: dict = {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": ready,
                "restartCount": pod.restart_count,
                "started": running,
            }
            exited = {
                "exitCode": pod.last_exit_code,
                "reason": "Error",
                "startedAt": iso(pod.last_started_at) if pod.last_started_at else None,
                "finishedAt": iso(pod.finished_at) if pod.finished_at else None,
            }
            if not running:
                st["state"] = {"waiting": {"reason": "ContainerCreating"}}
                st["started"] = False
            elif behaviour.crashloop and pod.state != TERMINATING:
                st["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 10s restarting failed container={c['name']} "
                        f"pod={pod.name}_{record.namespace}({record.uid})",
                    }
                }
                st["started"] = False
                if pod.restart_count:
                    st["lastState"] = {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": started,
                            "finishedAt": now_iso(),
                            "containerID": record.last_container_id or record.container_id,
                        }
                    }
            elif pod.down:
                # killed, not restarted yet
                st["state"] = {"terminated": {**exited, "containerID": record.container_id}}
                st["started"] = False
            else:
                st["state"] = {"running": {"startedAt": started}}
                if pod.exits and record.last_container_id:
                    st["lastState"] = {"terminated": {**exited, "containerID": record.last_container_id}}
            if running:
                st["containerID"] = record.container_id
            statuses.append(st)
        status = {
            "observedGeneration": 1,
            "phase": "Running" if running else "Pending",
            "conditions": conditions,
            "hostIP": self.c.settings.host,
            "hostIPs": [{"ip": self.c.settings.host}],
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "startTime": created,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
        if record.evicted:
            self._evicted_status(record, status)
        return status

    @staticmethod
    def _evicted_status(record: PodRecord, status: dict) -> None:
        """What the eviction manager and the kubelet's status manager leave on an evicted pod:
        phase Failed, reason Evicted, a DisruptionTarget condition, the containers killed."""
        now = now_iso()
        status.update(phase="Failed", reason=EVICTED, message=record.evicted)
        conditions = [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
                "reason": "TerminationByKubelet",
                "message": record.evicted,
            }
        ]
        for cond in status["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond = {
                    "type": cond["type"],
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": record.ready_changed,
                    "reason": "PodFailed",
                }
            elif cond["type"] == "PodReadyToStartContainers":
                cond = dict(cond, status="False")
            conditions.append(cond)
        status["conditions"] = conditions
        pod = record.pod
        for st in status["containerStatuses"]:
            started = iso(pod.started_at) if pod.started_at else None
            st.update(
                ready=False,
                started=False,
                state={
                    "terminated": {
                        "exitCode": 137,
                        "reason": "Error",
                        "startedAt": started,
                        "finishedAt": now,
                        "containerID": record.container_id,
                    }
                },
            )

    # -- deployments --------------------------------------------------------------------
    def owned_replicasets(self, d: dict) -> list[dict]:
        """ReplicaSets the deployment controls, adopting matching orphans (ClaimReplicaSets)."""
        ns = d["metadata"]["namespace"]
        uid = d["metadata"]["uid"]
        selector = from_label_selector(d["spec"].get("selector"))
        owned = []
        for rs in self.c.store.list(R.REPLICASETS, ns):
            ref = controller_of(rs)
            if ref is not None:
                if ref.get("uid") == uid:
                    owned.append(rs)
                continue
            if d["metadata"].get("deletionTimestamp") or rs["metadata"].get("deletionTimestamp"):
                continue
            if not selector.empty and selector.matches(rs["metadata"].get("labels")):
                adopted = copy.deepcopy(rs)
                adopted["metadata"].setdefault("ownerReferences", []).append(owner_ref(d, "Deployment", "apps/v1"))
                owned.append(self.c.store.update(R.REPLICASETS, adopted))
        return sorted(owned, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))

    def sync_deployment(self, key: tuple[str, str]) -> None:
        """syncDeployment: a deployment being deleted only gets its status synced; a paused
        one or a scaling event (replicas changed, template not) is scaled proportionally;
        otherwise the strategy rolls out."""
        ns, name = key
        d = self.c.store.get(R.DEPLOYMENTS, ns, name)
        if d is None:
            return
        all_rs = self.owned_replicasets(d)
        new_rs = self._find_new(d, all_rs)
        old_rss = [rs for rs in all_rs if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        if d["metadata"].get("deletionTimestamp"):
            self._sync_status(d, all_rs, new_rs, progress=False)
            return
        self._check_paused(d)
        if d["spec"].get("paused") or self._is_scaling_event(d, all_rs):
            if new_rs is not None:
                self._sync_revision(d, new_rs, all_rs)
            self._scale(d, new_rs, old_rss)
            all_rs = self.owned_replicasets(d)
            new_rs = self._find_new(d, all_rs)
            self._sync_status(d, all_rs, new_rs, progress=False)
            return
        if new_rs is None:
            new_rs = self._create_new_rs(d, all_rs)
            all_rs = all_rs + [new_rs]
        else:
            self._sync_revision(d, new_rs, all_rs)
        if d["spec"]["strategy"].get("type") == "Recreate":
            self._rollout_recreate(d, new_rs, old_rss)
        else:
            self._rollout_rolling(d, new_rs, old_rss)
        all_rs = self.owned_replicasets(d)
        new_rs = next((rs for rs in all_rs if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)
        self._cleanup(d, all_rs, new_rs)
        self._sync_status(d, all_rs, new_rs)

    def _check_paused(self, d: dict) -> None:
        """checkPausedConditions: Progressing Unknown DeploymentPaused / DeploymentResumed
        (never over a ProgressDeadlineExceeded)."""
        if d["spec"].get("progressDeadlineSeconds") is None:
            return
        status = d.setdefault("status", {})
        cond = self._condition(status, "Progressing")
        if cond is not None and cond["reason"] == "ProgressDeadlineExceeded":
            return
        paused_cond = cond is not None and cond["reason"] == "DeploymentPaused"
        if d["spec"].get("paused") and not paused_cond:
            self._set_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif not d["spec"].get("paused") and paused_cond:
            self._set_condition(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")

    @staticmethod
    def _is_scaling_event(d: dict, all_rs: list[dict]) -> bool:
        """isScalingEvent: an active ReplicaSet was sized for another replica count."""
        for rs in all_rs:
            if not rs["spec"].get("replicas", 0):
                continue
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if desired is not None and desired.isdigit() and int(desired) != d["spec"]["replicas"]:
                return True
        return False

    def _scale(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        """scale() of sync.go: the one active (or the latest) ReplicaSet takes the whole
        count; with several active ones the change is shared out in proportion to their
        sizes (GetReplicaSetProportion), leftovers to the largest."""
        replicas = d["spec"]["replicas"]
        newest_first = sorted(old_rss, key=lambda r: r["metadata"]["creationTimestamp"], reverse=True)
        active = [rs for rs in ([new_rs] if new_rs else []) + newest_first if rs["spec"].get("replicas", 0) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new_rs or (newest_first[0] if newest_first else None))
            if target is not None:
                self._scale_rs(d, target, replicas)
            return
        if (
            new_rs is not None
            and new_rs["spec"].get("replicas", 0) == replicas
            and (new_rs["metadata"].get("annotations") or {}).get(DESIRED) == str(replicas)
            and new_rs.get("status", {}).get("availableReplicas", 0) == replicas
        ):
            for rs in active:
                if rs is not new_rs:
                    self._scale_rs(d, rs, 0)  # the new one is saturated
            return
        if d["spec"]["strategy"].get("type") != "RollingUpdate":
            return
        surge, _ = max_surge_unavailable(d)
        allowed = replicas + surge if replicas > 0 else 0
        to_add = allowed - sum(rs["spec"].get("replicas", 0) for rs in active)
        if to_add > 0:  # ReplicaSetsBySizeNewer: larger first, newer first on ties
            active.sort(key=lambda r: (-r["spec"]["replicas"], _neg_time(r)))
        elif to_add < 0:  # ReplicaSetsBySizeOlder: larger first, older first on ties
            active.sort(key=lambda r: (-r["spec"]["replicas"], r["metadata"]["creationTimestamp"]))
        added = 0
        sizes = {}
        for rs in active:
            size = rs["spec"]["replicas"]
            if to_add:
                proportion = self._proportion(rs, d, to_add, added)
                sizes[rs["metadata"]["name"]] = size + proportion
                added += proportion
            else:
                sizes[rs["metadata"]["name"]] = size
        for i, rs in enumerate(active):
            if i == 0 and to_add:
                sizes[rs["metadata"]["name"]] = max(0, sizes[rs["metadata"]["name"]] + to_add - added)
            self._scale_rs(d, rs, sizes[rs["metadata"]["name"]])

    @staticmethod
    def _proportion(rs: dict, d: dict, to_add: int, added: int) -> int:
        size = rs["spec"].get("replicas", 0)
        if size == 0 or to_add == 0 or to_add == added:
            return 0
        replicas = d["spec"]["replicas"]
        if replicas == 0:
            fraction = -size
        else:
            surge, _ = max_surge_unavailable(d)
            before = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, "")
            before_max = int(before) if before.isdigit() else (d.get("status") or {}).get("replicas", 0)
            if before_max == 0:
                return 0
            exact = size * (replicas + surge) / before_max
            fraction = int(math.floor(exact + 0.5)) - size  # integer.RoundToInt32
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    def _find_new(self, d: dict, all_rs: list[dict]) -> dict | None:
        want = template_hash(d["spec"]["template"])
        matches = [rs for rs in all_rs if template_hash(rs["spec"]["template"]) == want]
        return matches[0] if matches else None

    def _max_revision(self, all_rs: list[dict]) -> int:
        return max((int(rs["metadata"].get("annotations", {}).get(REVISION, "0") or 0) for rs in all_rs), default=0)

    def _create_new_rs(self, d: dict, all_rs: list[dict]) -> dict:
        h = template_hash(d["spec"]["template"])
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        revision = str(self._max_revision(all_rs) + 1)
        surge, _ = max_surge_unavailable(d)
        replicas = d["spec"]["replicas"]
        annotations = {
            k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in (LAST_APPLIED, REVISION)
        }
        annotations.update({DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge), REVISION: revision})
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}",
                "namespace": d["metadata"]["namespace"],
                "uid": new_uid(),
                "generation": 1,
                "creationTimestamp": now_iso(),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
            "status": {"replicas": 0},
        }
        if not rs["spec"]["minReadySeconds"]:
            del rs["spec"]["minReadySeconds"]
        existing = self.c.store.peek(R.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
        if existing is not None:
            # a hash collision with a RS the deployment does not own: the real controller
            # bumps collisionCount; the sandbox leaves the stranger alone and reuses nothing
            rs["metadata"]["name"] += "-" + random_suffix(3)
        created = self.c.store.create(R.REPLICASETS, rs)
        self._set_revision(d, revision)
        if d["spec"].get("progressDeadlineSeconds") is not None:
            self._set_condition(
                d.setdefault("status", {}),
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{created["metadata"]["name"]}"',
            )
        d["_dirty"] = True
        return created

    def _sync_revision(self, d: dict, new_rs: dict, all_rs: list[dict]) -> None:
        annotations = new_rs["metadata"].get("annotations") or {}
        old_max = self._max_revision([rs for rs in all_rs if rs is not new_rs])
        revision = annotations.get(REVISION, "0")
        if int(revision or 0) <= old_max:
            # rolling back to an old template makes its RS the newest revision again
            revision = str(old_max + 1)
            updated = copy.deepcopy(new_rs)
            updated["metadata"].setdefault("annotations", {})[REVISION] = revision
            self.c.store.update(R.REPLICASETS, updated)
        self._set_revision(d, revision)
        if (
            d["spec"].get("progressDeadlineSeconds") is not None
            and self._condition(d.setdefault("status", {}), "Progressing") is None
        ):
            self._set_condition(
                d["status"],
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                f'Found new replica set "{new_rs["metadata"]["name"]}"',
            )
            d["_dirty"] = True

    def _set_revision(self, d: dict, revision: str) -> None:
        annotations = d["metadata"].setdefault("annotations", {})
        if annotations.get(REVISION) != revision:
            annotations[REVISION] = revision
            d["_dirty"] = True

    def _scale_rs(self, d: dict, rs: dict, replicas: int) -> dict:
        if rs["spec"].get("replicas") == replicas and rs["metadata"].get("annotations", {}).get(DESIRED) == str(
            d["spec"]["replicas"]
        ):
            return rs
        surge, _ = max_surge_unavailable(d)
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = replicas
        ann = updated["metadata"].setdefault("annotations", {})
        ann[DESIRED] = str(d["spec"]["replicas"])
        ann[MAX_REPLICAS] = str(d["spec"]["replicas"] + surge)
        return self.c.store.update(R.REPLICASETS, updated)

    def _rollout_recreate(self, d: dict, new_rs: dict, old_rss: list[dict]) -> None:
        for rs in old_rss:
            if rs["spec"].get("replicas", 0):
                self._scale_rs(d, rs, 0)
        # wait for every old pod (terminating ones included) to be gone
        for rs in old_rss:
            group = self.groups.get((rs["metadata"]["namespace"], rs["metadata"]["name"]))
            if group is not None and not group.gone:
                return
        self._scale_rs(d, new_rs, d["spec"]["replicas"])

    def _rollout_rolling(self, d: dict, new_rs: dict, old_rss: list[dict]) -> None:
        replicas = d["spec"]["replicas"]
        surge, unavailable = max_surge_unavailable(d)
        all_rs = [new_rs] + old_rss
        new_replicas = new_rs["spec"].get("replicas", 0)
        if new_replicas > replicas:
            target = replicas
        else:
            current = sum(rs["spec"].get("replicas", 0) for rs in all_rs)
            max_total = replicas + surge
            if current >= max_total:
                target = new_replicas
            else:
                target = new_replicas + min(max_total - current, replicas - new_replicas)
        if target != new_replicas:
            self._scale_rs(d, new_rs, target)
            if target > new_replicas:
                return  # scaled up: the old ones are looked at on the next sync
        new_rs = self.c.store.peek(R.REPLICASETS, new_rs["metadata"]["namespace"], new_rs["metadata"]["name"]) or new_rs
        old_rss = [
            self.c.store.peek(R.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
            for rs in old_rss
        ]
        old_count = sum(rs["spec"].get("replicas", 0) for rs in old_rss)
        if old_count == 0:
            return
        all_count = old_count + new_rs["spec"].get("replicas", 0)
        min_available = replicas - unavailable
        new_unavailable = new_rs["spec"].get("replicas", 0) - new_rs.get("status", {}).get("availableReplicas", 0)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        # first the old replicas that are not available anyway (cleanupUnhealthyReplicas)
        scaled = 0
        for rs in sorted(old_rss, key=lambda r: r["metadata"]["creationTimestamp"]):
            if scaled >= max_scaled_down:
                break
            spec_r = rs["spec"].get("replicas", 0)
            avail = rs.get("status", {}).get("availableReplicas", 0)
            if spec_r == 0 or spec_r == avail:
                continue
            down = min(max_scaled_down - scaled, spec_r - avail)
            self._scale_rs(d, rs, spec_r - down)
            scaled += down
        old_rss = [
            self.c.store.peek(R.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
            for rs in old_rss
        ]
        # then healthy ones, as far as availability allows (scaleDownOldReplicaSetsForRollingUpdate)
        available = sum(rs.get("status", {}).get("availableReplicas", 0) for rs in old_rss + [new_rs])
        if available <= min_available:
            return
        budget = available - min_available
        done = 0
        for rs in sorted(old_rss, key=lambda r: r["metadata"]["creationTimestamp"]):
            if done >= budget:
                break
            spec_r = rs["spec"].get("replicas", 0)
            if spec_r == 0:
                continue
            down = min(spec_r, budget - done)
            self._scale_rs(d, rs, spec_r - down)
            done += down

    def _cleanup(self, d: dict, all_rs: list[dict], new_rs: dict) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        old = [
            rs
            for rs in all_rs
            if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]
            and not rs["spec"].get("replicas", 0)
            and not rs.get("status", {}).get("replicas", 0)
            and not rs["metadata"].get("deletionTimestamp")
        ]
        excess = len(old) - limit
        if excess <= 0:
            return
        old.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0") or 0))
        for rs in old[:excess]:
            group = self.groups.get((rs["metadata"]["namespace"], rs["metadata"]["name"]))
            if group is None or group.gone:
                self.c.delete_object(R.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], "Background")

    # -- status (sync.go calculateStatus + progress.go syncRolloutStatus) ----------------
    @staticmethod
    def _condition(status: dict, ctype: str) -> dict | None:
        return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)

    @staticmethod
    def _set_condition(
        status: dict, ctype: str, cstatus: str, reason: str, message: str, keep_transition: str | None = None
    ) -> None:
        now = now_iso()
        current = Workloads._condition(status, ctype)
        if current is not None and current["status"] == cstatus and current["reason"] == reason:
            return
        cond = {
            "type": ctype,
            "status": cstatus,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
        if current is not None and current["status"] == cstatus:
            cond["lastTransitionTime"] = current["lastTransitionTime"]
        status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != ctype] + [cond]

    def _sync_status(self, d: dict, all_rs: list[dict], new_rs: dict | None, progress: bool = True) -> None:
        """calculateStatus, then (for rollouts: syncRolloutStatus) the Progressing condition."""
        replicas = d["spec"]["replicas"]
        old_status = d.get("status") or {}
        _, unavailable_budget = max_surge_unavailable(d)
        available = sum(rs.get("status", {}).get("availableReplicas", 0) for rs in all_rs)
        total = sum(rs["spec"].get("replicas", 0) for rs in all_rs)
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(rs.get("status", {}).get("replicas", 0) for rs in all_rs),
            "updatedReplicas": new_rs.get("status", {}).get("replicas", 0) if new_rs else 0,
            "readyReplicas": sum(rs.get("status", {}).get("readyReplicas", 0) for rs in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
            "conditions": copy.deepcopy(old_status.get("conditions") or []),
        }
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        if available >= replicas - unavailable_budget:
            self._set_condition(
                status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
            )
        else:
            self._set_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        deadline = d["spec"].get("progressDeadlineSeconds")
        current = self._condition(old_status, "Progressing")
        rs_name = new_rs["metadata"]["name"] if new_rs else None
        complete = (
            status["updatedReplicas"] == replicas
            and status["replicas"] == replicas
            and status["availableReplicas"] == replicas
            and status["observedGeneration"] >= d["metadata"].get("generation", 1)
        )
        is_complete_deployment = (
            status["replicas"] == status["updatedReplicas"]
            and current is not None
            and current["reason"] == "NewReplicaSetAvailable"
        )
        if deadline is None:
            status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"]
        elif progress and not is_complete_deployment:
            old_old = old_status.get("replicas", 0) - old_status.get("updatedReplicas", 0)
            new_old = status["replicas"] - status["updatedReplicas"]
            progressing = (
                status["updatedReplicas"] > old_status.get("updatedReplicas", 0)
                or new_old < old_old
                or status["readyReplicas"] > old_status.get("readyReplicas", 0)
                or status["availableReplicas"] > old_status.get("availableReplicas", 0)
            )
            if complete:
                self._set_condition(
                    status,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.'
                    if rs_name
                    else f'Deployment "{d["metadata"]["name"]}" has successfully progressed.',
                )
            elif progressing:
                now = now_iso()
                cond = {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                    "reason": "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{rs_name}" is progressing.'
                    if rs_name
                    else f'Deployment "{d["metadata"]["name"]}" is progressing.',
                }
                prog = self._condition(status, "Progressing")
                if prog is not None and prog["status"] == "True":
                    cond["lastTransitionTime"] = prog["lastTransitionTime"]
                status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"] + [cond]
            else:
                prog = self._condition(status, "Progressing")
                if prog is not None:
                    if prog["reason"] != "ProgressDeadlineExceeded":
                        due = parse_iso(prog["lastUpdateTime"]) + deadline
                        if due < time.time():
                            self._set_condition(
                                status,
                                "Progressing",
                                "False",
                                "ProgressDeadlineExceeded",
                                f'ReplicaSet "{rs_name}" has timed out progressing.'
                                if rs_name
                                else f'Deployment "{d["metadata"]["name"]}" has timed out progressing.',
                            )
                        else:
                            # requeue when the deadline passes (timestamps have 1 s resolution)
                            self.c.deployments.later(
                                (d["metadata"]["namespace"], d["metadata"]["name"]), due - time.time() + 1.0
                            )
        d["status"] = _drop_zeros(status)
        d.pop("_dirty", None)
        self.c.store.update(R.DEPLOYMENTS, d)
