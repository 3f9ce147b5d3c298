"""Each adapter's readiness rule, over recorded API objects.

The objects below were recorded from the sandbox's answers (a Deployment of two replicas and its
pods on the Kubernetes side, 2026-12-02; a BCS deployment, application and taskgroup from
bcs-storage) and are trimmed only of fields the rules never read; each case changes the few
fields a real API would change in that situation.

Kubernetes: ``rollout_status`` is ``kubectl rollout status``'s DeploymentStatusViewer
(kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go) plus "ready == available ==
desired"; ``pod_ready`` is a pod's Ready condition.  BCS Mesos: ``mesos_status``,
``member_ready`` and ``first_check_after`` (shared/docs/bcs-mesos-api.md section 3).  These are
the adapters' pure functions; the one rule that lives inside a method that also calls the API
(how long an application has been Abnormal, kept by ``BcsMesosPlatform.observe``) is tested
through ``observe`` with a stub hook that answers with recorded storage records.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from pathlib import Path

import pytest

from bluegreen.apps.config import load_app
from bluegreen.platforms.bcs_mesos import BcsMesosPlatform, first_check_after, member_ready, mesos_status
from bluegreen.platforms.kubernetes import pod_ready, rollout_status
from bluegreen.release.model import ColorStatus

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------
# Kubernetes: recorded from the sandbox (GET apps/v1 deployments/test-blue, GET v1 pods)
# ---------------------------------------------------------------------------------------------
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "test-blue",
        "namespace": "cap",
        "labels": {"app": "test-blue"},
        "annotations": {
            "bluegreen.io/applied-manifest-hash": "ecb3c655b0363001",
            "deployment.kubernetes.io/revision": "1",
        },
        "uid": "977a281e-816c-4397-8c3b-96ec77cf10e1",
        "creationTimestamp": "2026-12-02T04:47:30Z",
        "generation": 1,
        "resourceVersion": "21",
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "test-blue"}},
        "template": {
            "metadata": {"labels": {"app": "test-blue"}},
            "spec": {
                "containers": [
                    {
                        "name": "test-blue",
                        "image": "registry.local/test:v1",
                        "ports": [{"containerPort": 8000, "protocol": "TCP"}],
                    }
                ],
                "restartPolicy": "Always",
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
    # 1.1 s after the create: every replica up to date, none available yet (the API leaves out
    # readyReplicas and availableReplicas while they are 0)
    "status": {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "unavailableReplicas": 2,
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "lastUpdateTime": "2026-12-02T04:47:30Z",
                "lastTransitionTime": "2026-12-02T04:47:30Z",
                "reason": "MinimumReplicasUnavailable",
                "message": "Deployment does not have minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": "2026-12-02T04:47:30Z",
                "lastTransitionTime": "2026-12-02T04:47:30Z",
                "reason": "ReplicaSetUpdated",
                "message": "ReplicaSet \"test-blue-65f68c89c\" is progressing.",
            },
        ],
    },
}
ROLLED_OUT = {
    "observedGeneration": 1,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
    "conditions": [
        {
            "type": "Available",
            "status": "True",
            "lastUpdateTime": "2026-12-02T04:47:31Z",
            "lastTransitionTime": "2026-12-02T04:47:31Z",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": "2026-12-02T04:47:31Z",
            "lastTransitionTime": "2026-12-02T04:47:30Z",
            "reason": "NewReplicaSetAvailable",
            "message": "ReplicaSet \"test-blue-65f68c89c\" has successfully progressed.",
        },
    ],
}
POD = {
    "metadata": {
        "name": "test-blue-65f68c89c-7c2tv",
        "generateName": "test-blue-65f68c89c-",
        "namespace": "cap",
        "uid": "8113241a-e1f1-4552-aa02-bd90bd2ee45e",
        "creationTimestamp": "2026-12-02T04:47:30Z",
        "labels": {"app": "test-blue", "pod-template-hash": "65f68c89c"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "test-blue-65f68c89c",
                "uid": "dc5dfaed-0966-4c96-8044-578a1e07121f",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "resourceVersion": "24",
    },
    "spec": {"containers": [{"name": "test-blue", "image": "registry.local/test:v1"}], "nodeName": "sandbox"},
    "status": {
        "phase": "Running",
        "conditions": [
            {
                "type": "PodReadyToStartContainers",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-12-02T04:47:30Z",
            },
            {
                "type": "Initialized",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-12-02T04:47:30Z",
            },
            {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-12-02T04:47:31Z"},
            {
                "type": "ContainersReady",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-12-02T04:47:31Z",
            },
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-12-02T04:47:30Z",
            },
        ],
        "hostIP": "127.0.0.1",
        "podIP": "127.112.0.2",
        "startTime": "2026-12-02T04:47:30Z",
        "containerStatuses": [
            {
                "name": "test-blue",
                "image": "registry.local/test:v1",
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": "2026-12-02T04:47:30Z"}},
                "containerID": "containerd://8a9aa452d5d2a77c",
            }
        ],
        "qosClass": "BestEffort",
    },
}


def deployment(status: dict | None = None, **meta) -> dict:
    out = copy.deepcopy(DEPLOYMENT)
    if status is not None:
        out["status"] = copy.deepcopy(status)
    out["metadata"].update(meta)
    return out


def rolled_out(**status) -> dict:
    """The recorded rolled-out Deployment with ``status`` fields changed (None removes one, as the
    API leaves out zero counts)."""
    out = deployment(ROLLED_OUT)
    for k, v in status.items():
        if v is None:
            out["status"].pop(k, None)
        else:
            out["status"][k] = v
    return out


def pod(name: str = "test-blue-65f68c89c-7c2tv", ready: bool = True, restarts: int = 0, **meta) -> dict:
    out = copy.deepcopy(POD)
    out["metadata"]["name"] = name
    out["metadata"].update(meta)
    for cond in out["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady") and not ready:
            cond.update(
                status="False", reason="ContainersNotReady", message="containers with unready status: [test-blue]"
            )
    cs = out["status"]["containerStatuses"][0]
    cs["ready"], cs["restartCount"] = ready, restarts
    return out


PODS = [pod("test-blue-65f68c89c-7c2tv"), pod("test-blue-65f68c89c-x9k2p")]


def test_k8s_a_rolled_out_deployment_is_complete():
    status = rollout_status(rolled_out(), PODS)
    assert status == ColorStatus(
        exists=True,
        desired=2,
        ready=2,
        restarts=0,
        complete=True,
        failure=None,
        progress="2/2 available",
        image="registry.local/test:v1",
        deleting=False,
    )


def test_k8s_a_missing_deployment_is_missing():
    assert rollout_status(None, []) == ColorStatus.missing()


def test_k8s_just_created_with_no_replica_available_yet_is_not_complete():
    status = rollout_status(deployment(), [pod(ready=False), pod("test-blue-65f68c89c-x9k2p", ready=False)])
    assert (status.complete, status.failure, status.ready, status.desired) == (False, None, 0, 2)
    assert status.progress == "0/2 available"


def test_k8s_observed_generation_behind_waits_for_the_spec_update_to_be_observed():
    # a replace bumped metadata.generation; the controller has not seen it: the counts are the old spec's
    status = rollout_status(deployment(ROLLED_OUT, generation=2), PODS)
    assert not status.complete and status.failure is None
    assert "waiting for the deployment spec update to be observed" in status.progress


def test_k8s_a_stale_progress_deadline_is_not_a_failure_before_the_generation_is_observed():
    # kubectl looks at the Progressing condition only once the generation is observed: the
    # condition may be the previous rollout's
    stale = copy.deepcopy(ROLLED_OUT)
    stale["conditions"][1].update(
        status="False",
        reason="ProgressDeadlineExceeded",
        message="ReplicaSet \"test-blue-65f68c89c\" has timed out progressing.",
    )
    status = rollout_status(deployment(stale, generation=2), PODS)
    assert status.failure is None and not status.complete


def test_k8s_progress_deadline_exceeded_is_a_failure():
    timed_out = rolled_out(readyReplicas=None, availableReplicas=None, unavailableReplicas=2)
    timed_out["status"]["conditions"][1].update(
        status="False",
        reason="ProgressDeadlineExceeded",
        message="ReplicaSet \"test-blue-65f68c89c\" has timed out progressing.",
    )
    status = rollout_status(timed_out, [pod(ready=False)])
    assert not status.complete
    assert status.failure == (
        "deployment test-blue exceeded its progress deadline (600s): "
        "ReplicaSet \"test-blue-65f68c89c\" has timed out progressing."
    )


def test_k8s_fewer_updated_replicas_than_desired_is_not_complete():
    # mid rollout of a new template: one new replica, the two old ones still available
    status = rollout_status(rolled_out(replicas=3, updatedReplicas=1, readyReplicas=2, availableReplicas=2), PODS)
    assert not status.complete and status.failure is None
    assert status.progress == "2/2 available, 1 of 2 new replicas updated"


def test_k8s_old_replicas_pending_termination_is_not_complete():
    status = rollout_status(rolled_out(replicas=3, updatedReplicas=2, readyReplicas=3, availableReplicas=3), PODS)
    assert not status.complete
    assert status.progress.endswith("1 old replicas pending termination")


def test_k8s_an_unavailable_replica_is_not_complete():
    status = rollout_status(
        rolled_out(readyReplicas=1, availableReplicas=1, unavailableReplicas=1),
        [pod(), pod("test-blue-65f68c89c-x9k2p", ready=False)],
    )
    assert (status.complete, status.ready, status.desired, status.failure) == (False, 1, 2, None)


def test_k8s_ready_but_not_yet_available_counts_as_not_ready():
    # minReadySeconds: a pod is ready before it is available; ready is the smaller of the two
    status = rollout_status(rolled_out(readyReplicas=2, availableReplicas=1, unavailableReplicas=1), PODS)
    assert (status.complete, status.ready) == (False, 1)


def test_k8s_ready_replicas_behind_available_is_not_complete():
    status = rollout_status(rolled_out(readyReplicas=1, availableReplicas=2), PODS)
    assert (status.complete, status.ready) == (False, 1)


def test_k8s_a_deployment_being_deleted_is_a_failure():
    status = rollout_status(deployment(ROLLED_OUT, deletionTimestamp="2026-12-02T04:50:00Z"), PODS)
    assert status.deleting and not status.complete
    assert status.failure == "deployment test-blue is being deleted"


def test_k8s_restarts_are_summed_over_every_pod_and_container():
    two_containers = pod("test-blue-65f68c89c-x9k2p", restarts=2)
    two_containers["status"]["containerStatuses"].append(
        dict(two_containers["status"]["containerStatuses"][0], name="sidecar", restartCount=1)
    )
    status = rollout_status(rolled_out(), [pod(restarts=1), two_containers])
    assert status.restarts == 4 and status.complete, "restarts are reported, not judged here"


def test_k8s_scaled_to_zero_is_complete_with_nothing_desired():
    scaled = rolled_out(replicas=None, updatedReplicas=None, readyReplicas=None, availableReplicas=None)
    scaled["spec"]["replicas"] = 0
    status = rollout_status(scaled, [])
    assert (status.complete, status.desired, status.ready) == (True, 0, 0)


def test_k8s_the_image_is_the_first_container_of_the_template():
    changed = rolled_out()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.local/test:v2"
    assert rollout_status(changed, PODS).image == "registry.local/test:v2"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("ready", True),
        ("unready", False),  # readiness probe failing: Ready False, ContainersNotReady
        ("terminating", False),  # deletionTimestamp set: still Ready True, but on its way out
        ("pending", False),  # no conditions yet
    ],
)
def test_k8s_pod_ready(case, expected):
    p = {
        "ready": pod(),
        "unready": pod(ready=False),
        "terminating": pod(deletionTimestamp="2026-12-02T04:50:00Z"),
        "pending": {**pod(), "status": {"phase": "Pending"}},
    }[case]
    assert pod_ready(p) is expected


# ---------------------------------------------------------------------------------------------
# BCS Mesos: recorded from bcs-storage (the sandbox's; shapes of bk-bcs storage records:
# inspect deployment / application, query taskgroup ``data``)
# ---------------------------------------------------------------------------------------------
HEALTH_CHECK = {
    "type": "HTTP",
    "gracePeriodSeconds": 1,
    "intervalSeconds": 2,
    "timeoutSeconds": 1,
    "consecutiveFailures": 1,
    "http": {"port": 0, "portName": "test-port", "scheme": "http", "path": "/", "headers": None},
}
BCS_DEPLOYMENT = {
    "metadata": {
        "name": "test-blue",
        "namespace": "capm",
        "creationTimestamp": "0001-01-01T00:00:00Z",
        "labels": {"appname": "test-blue"},
        "annotations": {"bluegreen.io/applied-manifest-hash": "8fa6c54076f66366"},
    },
    "strategy": {"type": "", "rollingupdate": None},
    "status": "Running",
    "application": {"name": "test-blue", "curr_target_instances": 0, "CurrentRollingInstances": 0},
    "application_ext": None,
    "last_rolling_time": 0,
    "curr_rolling_operation": "",
    "is_in_rolling": False,
    "check_time": 0,
    "message": "",
    "raw_json": {
        "apiVersion": "v4",
        "kind": "deployment",
        "metadata": {"name": "test-blue", "namespace": "capm", "labels": {"appname": "test-blue"}},
        "spec": {
            "instance": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "command": "python",
                            "type": "MESOS",
                            "image": "registry.local/test:v1",
                            "ports": [{"name": "test-port", "containerPort": 8000, "protocol": "HTTP"}],
                            "healthChecks": [HEALTH_CHECK],
                        }
                    ],
                    "networkMode": "BRIDGE",
                }
            },
        },
    },
}
TG0 = "0.test-blue.capm.BCS-MESOS-10000.1796186852641412902"
TG1 = "1.test-blue.capm.BCS-MESOS-10000.1796186852641529436"
APPLICATION = {
    "metadata": {"name": "test-blue", "namespace": "capm", "labels": {"appname": "test-blue"}},
    "instance": 2,
    "buildedInstance": 2,
    "runningInstance": 2,
    "createTime": "2026-12-02T04:47:32Z",
    "lastUpdateTime": "2026-12-02T04:47:33Z",
    "status": "Running",
    "lastStatus": "Deploying",
    "message": "application is running",
    "pods": [{"name": TG0}, {"name": TG1}],
    "kind": "application",
}
STARTED = "2026-12-02T04:47:32Z"
STARTED_AT = 1796186852.0  # STARTED as a Unix time
CHECKED = STARTED_AT + 3.0  # gracePeriodSeconds 1 + intervalSeconds 2: the first check has run
TASKGROUP = {
    "metadata": {
        "name": TG0,
        "namespace": "capm",
        "creationTimestamp": "0001-01-01T00:00:00Z",
        "labels": {"appname": "test-blue"},
    },
    "rcname": "test-blue",
    "status": "Running",
    "lastStatus": "Starting",
    "hostIP": "127.112.0.4",
    "podIP": "127.112.0.4",
    "message": "pod is running",
    "startTime": STARTED,
    "lastUpdateTime": "2026-12-02T04:47:33Z",
    "containerStatuses": [
        {
            "name": "/bcs-container-1796186852641412902.0.0.test-blue.capm.BCS-MESOS-10000",
            "containerID": "42730cf8a68eadbe998f5d4e11d1cb64abad79f94afbe418a8b7793ca58211bf",
            "restartCount": 0,
            "status": "Running",
            "lastStatus": "Starting",
            "exitcode": 0,
            "image": "registry.local/test:v1",
            "message": "container is running",
            "startTime": "2026-12-02T04:47:32.642342091Z",
            "lastUpdateTime": "2026-12-02T04:47:33Z",
            "finishTime": "0001-01-01T00:00:00Z",
            # the scheduler reports true before the check has run (bk-bcs sched/task/task.go)
            "healCheckStatus": [{"type": "HTTP", "result": True, "message": "http check by executor"}],
        }
    ],
    "kind": "application",
}


def taskgroup(
    name: str = TG0, status: str = "Running", healthy: bool = True, message: str | None = None, **container
) -> dict:
    out = copy.deepcopy(TASKGROUP)
    out["metadata"]["name"] = name
    out["status"] = status
    if message is not None:
        out["message"] = message
    cs = out["containerStatuses"][0]
    cs["healCheckStatus"][0]["result"] = healthy
    for k, v in container.items():
        if v is None:
            cs.pop(k, None)
        else:
            cs[k] = v
    return out


def bcs_deployment(**fields) -> dict:
    out = copy.deepcopy(BCS_DEPLOYMENT)
    out.update(fields)
    return out


def application(**fields) -> dict:
    out = copy.deepcopy(APPLICATION)
    out.update(fields)
    return out


TASKGROUPS = [taskgroup(TG0), taskgroup(TG1)]
LATER = CHECKED + 60


def test_bcs_a_running_application_with_every_check_passed_is_complete():
    status = mesos_status(bcs_deployment(), application(), TASKGROUPS, now=LATER)
    assert status == ColorStatus(
        exists=True,
        desired=2,
        ready=2,
        restarts=0,
        complete=True,
        failure=None,
        progress="2/2 running and healthy (deployment Running, application Running)",
        image="registry.local/test:v1",
        deleting=False,
    )


def test_bcs_a_missing_deployment_is_missing():
    assert mesos_status(None, None, [], now=LATER) == ColorStatus.missing()


def test_bcs_first_check_after_is_grace_or_delay_plus_one_interval():
    assert first_check_after(BCS_DEPLOYMENT["raw_json"]) == 3.0
    raw = copy.deepcopy(BCS_DEPLOYMENT["raw_json"])
    raw["spec"]["template"]["spec"]["containers"][0]["healthChecks"] = [
        dict(HEALTH_CHECK, gracePeriodSeconds=1, delaySeconds=5, intervalSeconds=2),
        None,
    ]
    assert first_check_after(raw) == 7.0, "the scheduler's delaySeconds is a lower bound too"
    raw["spec"]["template"]["spec"]["containers"].append(
        {"image": "sidecar", "healthChecks": [dict(HEALTH_CHECK, gracePeriodSeconds=10, intervalSeconds=4)]}
    )
    assert first_check_after(raw) == 14.0, "the longest of every container's checks"
    raw["spec"]["template"]["spec"]["containers"] = [{"image": "x"}]
    assert first_check_after(raw) == 0.0 and first_check_after(None) == 0.0


def test_bcs_a_health_check_that_has_not_run_yet_does_not_count():
    # result true, but reported before the first check could have run: not ready, whatever it says
    just_started = STARTED_AT + 2.0
    status = mesos_status(bcs_deployment(), application(), TASKGROUPS, now=just_started)
    assert (status.ready, status.complete, status.failure) == (0, False, None)
    assert not member_ready(taskgroup(), 3.0, just_started)
    assert member_ready(taskgroup(), 3.0, CHECKED + 0.7), "one interval after the grace: it has run"


def test_bcs_an_unknown_start_time_never_counts_a_check_as_run():
    # storage writes Go's zero time when a start is unknown
    zero = "0001-01-01T00:00:00Z"
    tg = taskgroup(startTime=zero)
    tg["startTime"] = zero
    assert not member_ready(tg, 3.0, LATER)
    # the container's start missing: the taskgroup's is used
    assert member_ready(taskgroup(startTime=None), 3.0, LATER)


def test_bcs_a_failed_health_check_is_not_ready():
    tgs = [taskgroup(TG0), taskgroup(TG1, healthy=False)]
    status = mesos_status(bcs_deployment(), application(), tgs, now=LATER)
    assert (status.ready, status.complete, status.failure) == (1, False, None)


def test_bcs_a_container_without_health_checks_is_ready_once_running():
    tg = taskgroup(healCheckStatus=None)  # storage leaves healCheckStatus out when a container has none
    assert member_ready(tg, 0.0, STARTED_AT)
    assert not member_ready(taskgroup(status="Starting", healCheckStatus=None), 0.0, LATER)


@pytest.mark.parametrize("state", ["Staging", "Starting", "Killing"])
def test_bcs_a_taskgroup_not_yet_or_no_longer_running_is_not_ready(state):
    status = mesos_status(
        bcs_deployment(),
        application(status="Deploying", runningInstance=1),
        [taskgroup(TG0), taskgroup(TG1, status=state)],
        now=LATER,
    )
    assert (status.ready, status.complete, status.failure) == (1, False, None)


@pytest.mark.parametrize(
    "state, message",
    [
        ("Lost", "some tasks are lost"),
        ("Failed", "container exited, exit code 137"),
        ("Error", "docker run failed"),
    ],
)
def test_bcs_a_lost_failed_or_error_taskgroup_is_a_failure(state, message):
    app = application(status="Abnormal", message="have some lost taskgroups", runningInstance=1)
    status = mesos_status(
        bcs_deployment(),
        app,
        [taskgroup(TG0), taskgroup(TG1, status=state, message=message)],
        now=LATER,
        abnormal_for=0.0,
    )
    assert not status.complete
    assert status.failure == f"taskgroup {TG1} is {state}: {message}"


def test_bcs_a_failed_taskgroup_of_an_older_application_is_not_this_colors():
    # only the application's current pods are members (a rescheduled one leaves its old ID behind)
    old = taskgroup(
        "0.test-blue.capm.BCS-MESOS-10000.1796186800000000000",
        status="Failed",
        message="container exited, exit code 137",
    )
    status = mesos_status(bcs_deployment(), application(), TASKGROUPS + [old], now=LATER)
    assert status.failure is None and status.complete and status.ready == 2


def test_bcs_abnormal_within_the_tolerance_waits():
    app = application(status="Abnormal", message="application has failed pods", runningInstance=1)
    status = mesos_status(bcs_deployment(), app, TASKGROUPS, now=LATER, abnormal_for=29.0, abnormal_tolerance=30.0)
    assert status.failure is None and not status.complete
    at_the_limit = mesos_status(
        bcs_deployment(), app, TASKGROUPS, now=LATER, abnormal_for=30.0, abnormal_tolerance=30.0
    )
    assert at_the_limit.failure is None, "only longer than the tolerance fails"


def test_bcs_abnormal_after_the_tolerance_is_a_failure():
    app = application(status="Abnormal", message="application has failed pods", runningInstance=1)
    status = mesos_status(bcs_deployment(), app, TASKGROUPS, now=LATER, abnormal_for=31.0, abnormal_tolerance=30.0)
    assert status.failure == "application Abnormal for 31s: application has failed pods"
    assert not status.complete


def test_bcs_a_rolling_update_in_progress_is_not_complete():
    for deployment_fields in (
        {"is_in_rolling": True, "status": "Update"},
        {"is_in_rolling": True},
        {"application_ext": {"name": "test-blue-v2", "curr_target_instances": 1}},
    ):
        status = mesos_status(bcs_deployment(**deployment_fields), application(), TASKGROUPS, now=LATER)
        assert (status.ready, status.complete, status.failure) == (2, False, None), deployment_fields


def test_bcs_fewer_running_instances_than_desired_is_not_complete():
    status = mesos_status(bcs_deployment(), application(runningInstance=1), TASKGROUPS, now=LATER)
    assert not status.complete
    missing_member = mesos_status(bcs_deployment(), application(), [taskgroup(TG0)], now=LATER)
    assert (missing_member.ready, missing_member.complete) == (1, False)


def test_bcs_a_deployment_being_deleted_is_a_failure():
    status = mesos_status(
        bcs_deployment(status="Deleting", message="waiting applications to be deleted"),
        application(status="Deleting"),
        TASKGROUPS,
        now=LATER,
    )
    assert status.deleting and not status.complete
    assert status.failure == "the deployment is being deleted"


def test_bcs_nothing_desired_is_never_complete():
    # BCS cannot keep a deployment at zero instances: nothing desired is never "every replica ready"
    zero = bcs_deployment()
    zero["raw_json"]["spec"]["instance"] = 0
    status = mesos_status(zero, application(instance=0, runningInstance=0, pods=[]), [], now=LATER)
    assert (status.desired, status.complete) == (0, False)
    # an application's instance 0 (not filled in yet) falls back to the deployment's own count
    assert mesos_status(bcs_deployment(), application(instance=0), TASKGROUPS, now=LATER).desired == 2


def test_bcs_desired_comes_from_the_deployment_before_the_application_exists():
    status = mesos_status(bcs_deployment(), None, [], now=LATER)
    assert (status.desired, status.ready, status.complete) == (2, 0, False)
    assert status.progress == "0/2 running and healthy (deployment Running, application absent)"


def test_bcs_restarts_are_summed_over_every_taskgroup():
    status = mesos_status(
        bcs_deployment(), application(), [taskgroup(TG0, restartCount=2), taskgroup(TG1, restartCount=1)], now=LATER
    )
    assert status.restarts == 3 and status.complete


# -- the Abnormal clock: kept by BcsMesosPlatform.observe (the smallest seam that has it) -------------
class RecordedStorage:
    """A stand-in for BcsHook answering inspect/query from recorded storage records."""

    def __init__(self):
        self.deployment, self.application, self.taskgroups = bcs_deployment(), application(), TASKGROUPS
        self.budget = None

    def inspect(self, kind, namespace, name):
        data = {"deployment": self.deployment, "application": self.application}.get(kind)
        return {"data": data} if data is not None else None

    def query(self, kind, **filters):
        assert kind == "taskgroup" and filters["rcName"] == "test-blue", (kind, filters)
        return [{"data": t} for t in self.taskgroups]


@pytest.fixture
def mesos_platform():
    app = dataclasses.replace(load_app(ROOT / "dags" / "apps" / "test-mesos.yaml"), abnormal_tolerance=0.3)
    storage = RecordedStorage()
    return BcsMesosPlatform(app, hook=storage), storage


def test_bcs_observe_counts_how_long_the_application_has_been_abnormal(mesos_platform):
    platform, storage = mesos_platform
    storage.application = application(status="Abnormal", message="application has failed pods", runningInstance=1)
    assert platform.observe("blue").failure is None, "first seen Abnormal: its clock starts now"
    time.sleep(0.4)
    failed = platform.observe("blue")
    assert re.fullmatch(r"application Abnormal for \d+s: application has failed pods", failed.failure or ""), failed
    assert platform.observe("green").failure is None, "each color has its own clock"


def test_bcs_observe_restarts_the_abnormal_clock_once_it_is_running_again(mesos_platform):
    platform, storage = mesos_platform
    storage.application = application(status="Abnormal", message="application has failed pods", runningInstance=1)
    platform.observe("blue")
    time.sleep(0.4)
    storage.application = application()
    assert platform.observe("blue").failure is None
    storage.application = application(status="Abnormal", message="application has failed pods", runningInstance=1)
    assert platform.observe("blue").failure is None, "a new Abnormal spell starts a new clock"
