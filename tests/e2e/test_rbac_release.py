"""Releases through a least-privilege Kubernetes connection: a ServiceAccount token (from the
TokenRequest API) bound to exactly the shipped Role (deploy/kubernetes/rbac.yaml) releases
blue -> green; bound to a Role that lacks one verb, the release stops at its first task with
the missing permission named, and the cluster is left as it was."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from bluegreen.platforms.kubernetes import REQUIRED_PERMISSIONS, VIEWER_PERMISSIONS, required_permissions

from .harness import task_states, xcom

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
MANIFEST = ROOT / "deploy" / "kubernetes" / "rbac.yaml"
VIEWER_MANIFEST = ROOT / "deploy" / "kubernetes" / "rbac-viewer.yaml"
V1, V2 = "registry.local/test:v1", "registry.local/test:v2"


def manifest_docs(manifest: Path = MANIFEST) -> list[dict]:
    return list(yaml.safe_load_all(manifest.read_text()))


def shipped_rules(manifest: Path = MANIFEST) -> list[dict]:
    return next(d for d in manifest_docs(manifest) if d["kind"] == "Role")["rules"]


def granted_by(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {
        (verb, group, resource)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def apply_rbac(sandbox, ns: str, rules: list[dict] | None = None, manifest: Path = MANIFEST) -> None:
    """kubectl apply the shipped manifest in ``ns`` (with the Role's rules replaced, if given)."""
    docs = manifest_docs(manifest)
    if rules is not None:
        next(d for d in docs if d["kind"] == "Role")["rules"] = rules
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(sandbox.kubeconfig), "-n", ns, "apply", "-f", "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def without(verb: str, group: str, resource: str) -> list[dict]:
    rules = []
    for rule in shipped_rules():
        rule = dict(rule)
        if group in rule["apiGroups"] and resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        rules.append(rule)
    return rules


@pytest.fixture
def sa_connection(sandbox, kube, unique_name, tmp_path, monkeypatch, airflow_env):
    """An Airflow connection whose kubeconfig holds the ServiceAccount bluegreen's token."""

    def make(ns: str, account: str = "bluegreen") -> str:
        token = (
            client.CoreV1Api(kube)
            .create_namespaced_service_account_token(account, ns, {"spec": {"expirationSeconds": 3600}})
            .status.token
        )
        config = yaml.safe_load(sandbox.kubeconfig.read_text())
        config["users"] = [{"name": account, "user": {"token": token}}]
        config["contexts"][0]["context"].update(user=account, namespace=ns)
        path = tmp_path / f"kubeconfig-{account}"
        path.write_text(yaml.safe_dump(config))
        conn_id = f"k8s_{account.replace('-', '_')}_sa"
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(path), "namespace": ns}}),
        )
        return conn_id

    return make


def test_the_shipped_role_grants_exactly_what_the_adapter_requires():
    granted = granted_by(shipped_rules())
    required = {(p.verb, p.group, p.resource) for p in REQUIRED_PERMISSIONS}
    assert granted == required, f"only in the Role: {granted - required}; only required: {required - granted}"
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in shipped_rules()), (
        "no resourceNames or nonResourceURLs: the adapter's names come from each app's config"
    )
    assert len(granted) == sum(len(r["apiGroups"]) * len(r["resources"]) * len(r["verbs"]) for r in shipped_rules()), (
        "no permission granted twice"
    )


def test_a_release_with_exactly_the_shipped_role_goes_blue_to_green(k8s_app, sandbox, sa_connection, unique_name):
    apply_rbac(sandbox, unique_name)
    app = k8s_app(connection_id=sa_connection(unique_name))
    first = app.release(V1)
    assert first.state == "success", task_states(first)
    assert app.selector() == {"app": "test-blue"} and app.deployments() == {"test-blue": V1}
    second = app.release(V2)
    assert second.state == "success", task_states(second)
    assert app.selector() == {"app": "test-green"}
    assert app.deployments() == {"test-green": V2}, "blue was deleted"
    assert app.serves(V2)


@pytest.mark.parametrize(
    "missing",
    [("delete", "apps", "deployments"), ("update", "", "services")],
    ids=["no-delete-deployments", "no-update-services"],
)
def test_a_role_lacking_one_verb_stops_the_release_at_plan_and_nothing_changes(
    k8s_app, sandbox, control, sa_connection, unique_name, missing
):
    apply_rbac(sandbox, unique_name)
    app = k8s_app(connection_id=sa_connection(unique_name))
    assert app.release(V1).state == "success"
    apply_rbac(sandbox, unique_name, without(*missing))
    service_before, deployments_before = app.service(), app.deployments()
    seq = max((e["seq"] for e in control.audit()), default=0)

    run = app.release(V2)

    states = task_states(run)
    assert run.state == "failed" and states["plan"] == "failed", states
    assert states["deploy_new_color"] != "success"
    verb, group, resource = missing
    named = f"{verb} {resource}{'.' + group if group else ''}"
    failure = xcom(run, "plan", "failure")
    assert failure == (
        f"the Kubernetes connection 'k8s_bluegreen_sa' may not do what a release needs in the namespace "
        f"'{unique_name}': {named} (RBAC; nothing was changed).  Grant them with deploy/kubernetes/rbac.yaml: "
        f"kubectl -n {unique_name} apply -f deploy/kubernetes/rbac.yaml (and bind its Role to the connection's "
        f"account), then start a new run"
    )
    assert [e for e in control.audit(since=seq) if e.get("namespace") == unique_name] == [], (
        "no selector change, delete or scale-down"
    )
    after = app.service()
    assert after.metadata.resource_version == service_before.metadata.resource_version, "not even the lock"
    assert after.metadata.annotations == service_before.metadata.annotations
    assert app.deployments() == deployments_before == {"test-blue": V1}
    assert app.serves(V1)


def test_only_scale_to_zero_apps_need_the_scale_subresource(k8s_app, unique_name):
    deleting, scaling = k8s_app().app, k8s_app(old_color="scale-to-zero").app
    assert "deployments/scale" not in {p.resource for p in required_permissions(deleting)}
    assert set(required_permissions(scaling)) == set(REQUIRED_PERMISSIONS)


def test_the_viewer_role_grants_exactly_what_the_releases_page_reads():
    granted = granted_by(shipped_rules(VIEWER_MANIFEST))
    assert granted == {(p.verb, p.group, p.resource) for p in VIEWER_PERMISSIONS}
    release_may = {(p.verb, p.group, p.resource) for p in REQUIRED_PERMISSIONS}
    assert granted <= release_may, "a release's account may read what the page reads"
    assert all(verb in ("get", "list") for verb, _, _ in granted), "read-only"


def test_the_releases_page_reads_a_cluster_through_exactly_the_viewer_role_and_may_not_write(
    k8s_app, sandbox, sa_connection, unique_name
):
    """What the api-server's account needs for the Releases page (an in_cluster connection in the
    Helm values): a token bound to the shipped viewer Role reads a released app's Service and both
    colors as the page does; it may not change anything; without the Role the read is refused."""
    from bluegreen.platforms import platform_for
    from bluegreen.release.model import ReleaseError
    from bluegreen.ui.cluster import read_cluster

    app = k8s_app()
    assert app.release(V1).state == "success"
    assert app.release(V2).state == "success"
    apply_rbac(sandbox, unique_name, manifest=VIEWER_MANIFEST)
    viewer = type(app.app).from_json(
        {**app.app.to_json(), "connection_id": sa_connection(unique_name, "bluegreen-viewer")}
    )
    adapter = platform_for(viewer)
    view = read_cluster(viewer, adapter)
    assert view.error is None and view.service_exists and view.live == "green", view
    assert view.record and view.record["run_id"] and len(view.history) == 2, view
    assert view.colors["green"].complete and view.colors["green"].image == V2, view.colors
    assert not view.colors["blue"].exists, view.colors
    with pytest.raises(ReleaseError, match="403"):
        adapter.write_service(adapter.read_service(), viewer.selector_for("blue"), {})
    assert app.selector() == {"app": "test-green"}

    subprocess.run(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "-n",
            unique_name,
            "delete",
            "rolebinding",
            "bluegreen-viewer",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with pytest.raises(ReleaseError, match="403"):
        read_cluster(viewer, platform_for(viewer))
