"""RBAC in the sandbox's Kubernetes API, driven by real clients (the official client and
kubectl v1.37): the shipped deploy/kubernetes/rbac.yaml applies; a ServiceAccount token from
the TokenRequest API is allowed what its Role grants and refused the rest with the real 403
Status; ``kubectl auth can-i`` answers the same; the admin token is unaffected.  A
SelfSubjectRulesReview (``kubectl auth can-i --list``) lists the rules of the bindings that
apply in a namespace, as the RBAC rule resolver does."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
MANIFEST = ROOT / "deploy" / "kubernetes" / "rbac.yaml"
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture
def kubectl(sandbox, ns):
    def run(*args: str, token: str | None = None, check: bool = True, stdin: str | None = None):
        auth = ["--token", token] if token else []
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(sandbox.kubeconfig), *auth, "-n", ns, *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return run


def as_token(api: client.ApiClient, token: str) -> client.ApiClient:
    """The admin client's connection (server, CA) with another bearer token."""
    config = copy.deepcopy(api.configuration)
    config.api_key = {"authorization": f"Bearer {token}"}
    config.api_key_prefix = {}
    config.refresh_api_key_hook = None  # the kubeconfig loader's hook would put the admin token back
    return client.ApiClient(config)


def token_for(core: client.CoreV1Api, ns: str, name: str = "bluegreen", **spec) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return core.create_namespaced_service_account_token(name, ns, body).status.token


def status_of(e: ApiException) -> dict:
    return json.loads(e.body)


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.local/test:v1"}]},
            },
        },
    }


@pytest.fixture
def shipped(kubectl, core, ns):
    """The shipped manifest applied in the test's namespace; a token of its ServiceAccount."""
    kubectl("apply", "-f", str(MANIFEST))
    return token_for(core, ns)


def test_kubectl_applies_the_shipped_manifest_and_the_objects_are_stored_as_written(kubectl, api, ns):
    out = kubectl("apply", "-f", str(MANIFEST)).stdout
    assert out.splitlines() == [
        "serviceaccount/bluegreen created",
        f"role.{RBAC}/bluegreen created",
        f"rolebinding.{RBAC}/bluegreen created",
    ]
    again = kubectl("apply", "-f", str(MANIFEST)).stdout
    assert again.splitlines() == [
        "serviceaccount/bluegreen unchanged",
        f"role.{RBAC}/bluegreen unchanged",
        f"rolebinding.{RBAC}/bluegreen unchanged",
    ]
    docs = {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}
    rbac_api = client.RbacAuthorizationV1Api(api)
    role = api.sanitize_for_serialization(rbac_api.read_namespaced_role("bluegreen", ns))
    assert role["rules"] == docs["Role"]["rules"]
    binding = rbac_api.read_namespaced_role_binding("bluegreen", ns)
    assert (binding.role_ref.kind, binding.role_ref.name) == ("Role", "bluegreen")
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [("ServiceAccount", "bluegreen", None)]
    listed = kubectl("get", "roles,rolebindings,serviceaccounts", "-o", "name").stdout.split()
    assert listed == [f"role.{RBAC}/bluegreen", f"rolebinding.{RBAC}/bluegreen", "serviceaccount/bluegreen"]


def test_a_token_gets_what_the_role_grants_and_the_real_403_for_the_rest(api, core, ns, shipped):
    sa = as_token(api, shipped)
    sa_core, sa_apps = client.CoreV1Api(sa), client.AppsV1Api(sa)
    assert sa_core.list_namespaced_pod(ns).items == []
    assert sa_apps.create_namespaced_deployment(ns, deployment("web")).metadata.name == "web"
    assert sa_apps.read_namespaced_deployment("web", ns).metadata.name == "web"
    sa_apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 0}})
    with pytest.raises(ApiException) as refused:
        sa_core.create_namespaced_pod(
            ns, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "registry.local/test:v1"}]}}
        )
    assert refused.value.status == 403
    user = f"system:serviceaccount:{ns}:bluegreen"
    assert status_of(refused.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'pods is forbidden: User "{user}" cannot create resource "pods" in API group "" in the '
        f'namespace "{ns}"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    with pytest.raises(ApiException) as named:
        sa_apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert status_of(named.value)["message"] == (
        f'deployments.apps "web" is forbidden: User "{user}" cannot patch resource "deployments" in API group '
        f'"apps" in the namespace "{ns}"'
    )
    assert status_of(named.value)["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    # the Role is namespaced: nothing in another namespace, nothing cluster-wide
    with pytest.raises(ApiException) as elsewhere:
        sa_apps.list_namespaced_deployment("default")
    assert elsewhere.value.status == 403 and 'in the namespace "default"' in status_of(elsewhere.value)["message"]
    with pytest.raises(ApiException) as cluster:
        sa_core.list_namespace()
    assert status_of(cluster.value)["message"] == (
        f'namespaces is forbidden: User "{user}" cannot list resource "namespaces" in API group "" at the cluster scope'
    )
    # a watch the Role grants is served; one it does not grant is refused; the admin is unaffected
    watched = sa_core.list_namespaced_pod(ns, watch=True, timeout_seconds=1, _preload_content=False)
    assert watched.status == 200
    with pytest.raises(ApiException) as watch:
        sa_core.list_namespaced_endpoints(ns, watch=True, timeout_seconds=1, _preload_content=False)
    assert 'cannot watch resource "endpoints"' in status_of(watch.value)["message"]
    assert client.AppsV1Api(api).list_namespaced_deployment("default").kind == "DeploymentList"
    client.AppsV1Api(api).patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})


def test_kubectl_auth_can_i_and_whoami_answer_for_the_token(kubectl, ns, shipped):
    def can_i(*args: str, token: str | None = shipped) -> tuple[str, int]:
        proc = kubectl("auth", "can-i", *args, token=token, check=False)
        return proc.stdout.strip(), proc.returncode

    assert can_i("create", "deployments.apps") == ("yes", 0)
    assert can_i("delete", "deployments") == ("yes", 0)
    assert can_i("patch", "deployments", "--subresource=scale") == ("yes", 0)
    assert can_i("update", "services") == ("yes", 0)
    assert can_i("list", "endpointslices.discovery.k8s.io") == ("yes", 0)
    assert can_i("patch", "services") == ("no", 1)
    assert can_i("patch", "deployments") == ("no", 1)
    assert can_i("create", "pods") == ("no", 1)
    assert can_i("get", "secrets") == ("no", 1)
    assert can_i("create", "deployments", "-n", "default") == ("no", 1)
    # the admin token is allowed everything, as system:masters is
    assert can_i("*", "*", token=None) == ("yes", 0)
    assert can_i("create", "pods", "-n", "default", token=None) == ("yes", 0)
    who = json.loads(kubectl("auth", "whoami", "-o", "json", token=shipped).stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:bluegreen"
    assert who["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{ns}",
        "system:authenticated",
    ]


def test_kubectl_create_token_issues_a_token_that_kubectl_can_use(kubectl, ns, shipped):
    token = kubectl("create", "token", "bluegreen", "--duration=15m").stdout.strip()
    assert token.count(".") == 2, "a JWT"
    assert kubectl("get", "deployments", token=token).returncode == 0
    assert kubectl("get", "services", token=token).returncode == 0
    refused = kubectl("get", "endpoints", token=token, check=False)  # not in the Role
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'Error from server (Forbidden): endpoints is forbidden: User "system:serviceaccount:{ns}:bluegreen" cannot '
        f'list resource "endpoints" in API group "" in the namespace "{ns}"'
    )
    too_short = kubectl("create", "token", "bluegreen", "--duration=1m", check=False)
    assert (
        'spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes' in too_short.stderr
    )
    missing = kubectl("create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr


def test_unknown_foreign_and_void_tokens_get_401(api, core, sandbox, ns, shipped):
    url = f"{sandbox.kube_url}/api/v1/namespaces/{ns}/pods"

    def status(token: str) -> int:
        return requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, verify=str(sandbox.ca_file), timeout=10
        ).status_code

    assert status(shipped) == 200
    assert requests.get(url, verify=str(sandbox.ca_file), timeout=10).status_code == 401
    assert status("not-a-token") == 401
    assert status(shipped[:-2] + ("AA" if not shipped.endswith("AA") else "BB")) == 401, "a forged signature"
    assert status(token_for(core, ns, audiences=["vault"])) == 401, "a token for another audience"
    client.CoreV1Api(api).delete_namespaced_service_account("bluegreen", ns)
    assert status(shipped) == 401, "the ServiceAccount is gone: its tokens are void"


def test_rules_match_as_rbac_does(api, core, ns):
    """Wildcards, */subresource, resourceNames, a ClusterRole bound in one namespace, a Group
    subject, and a binding to a Role that does not exist (its error becomes the reason)."""
    rbac_api = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "robot"}})
    rbac_api.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "robot"},
            "rules": [
                {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["services"], "resourceNames": ["web"], "verbs": ["*"]},
            ],
        },
    )
    rbac_api.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "robot"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "robot"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
        },
    )
    rbac_api.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "view-pods"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": f"{ns}-pod-reader"},
            "subjects": [{"kind": "Group", "name": f"system:serviceaccounts:{ns}"}],
        },
    )
    rbac_api.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "dangling"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "not-there"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
        },
    )
    rbac_api.create_cluster_role(
        {
            "metadata": {"name": f"{ns}-pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        }
    )
    try:
        robot = client.AuthorizationV1Api(as_token(api, token_for(core, ns, "robot")))

        def review(verb, resource, group="", subresource="", name="", namespace=ns):
            body = {
                "spec": {
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                        "subresource": subresource,
                        "name": name,
                    }
                }
            }
            status = robot.create_self_subject_access_review(body).status
            return status.allowed, status.reason

        assert review("patch", "deployments", "apps", "scale") == (
            True,
            f'RBAC: allowed by RoleBinding "robot/{ns}" of Role "robot" to ServiceAccount "robot/{ns}"',
        )
        assert review("update", "deployments", "apps", "scale")[0] is False
        assert review("patch", "deployments", "apps")[0] is False, "*/scale is not the deployment itself"
        assert review("delete", "services", name="web")[0] is True
        assert review("delete", "services", name="db")[0] is False
        assert review("list", "services") == (False, f'RBAC: role.{RBAC} "not-there" not found'), (
            "a list names no object: resourceNames never match it"
        )
        assert review("list", "pods")[0] is True, "the ClusterRole, bound by a RoleBinding to the SA's group"
        assert review("list", "pods", namespace="default")[0] is False, "...in that namespace only"
        assert review("create", "selfsubjectaccessreviews", "authorization.k8s.io", namespace="")[0] is True, (
            "system:basic-user lets every authenticated user ask"
        )
    finally:
        rbac_api.delete_cluster_role(f"{ns}-pod-reader")


def test_rbac_objects_are_validated_and_a_role_ref_cannot_change(api, ns):
    rbac_api = client.RbacAuthorizationV1Api(api)
    with pytest.raises(ApiException) as bad_rule:
        rbac_api.create_namespaced_role(
            ns, {"metadata": {"name": "r"}, "rules": [{"resources": ["pods"], "verbs": ["get"]}]}
        )
    assert status_of(bad_rule.value)["message"] == (
        f'Role.{RBAC} "r" is invalid: rules[0].apiGroups: Required value: resource rules must supply at least one '
        f'api group'
    )
    rbac_api.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "one"},
            "subjects": [{"kind": "User", "name": "jane"}],
        },
    )
    binding = rbac_api.read_namespaced_role_binding("b", ns)
    assert binding.subjects[0].api_group == RBAC, "a User subject defaults to the RBAC group"
    binding.role_ref.name = "two"
    with pytest.raises(ApiException) as changed:
        rbac_api.replace_namespaced_role_binding("b", ns, binding)
    assert (
        changed.value.status == 422
        and "roleRef: Invalid value" in status_of(changed.value)["message"]
        and "cannot change roleRef" in status_of(changed.value)["message"]
    )


def test_deleting_the_namespace_deletes_its_rbac_objects(api, core, unique_name):
    ns = f"{unique_name[:50]}-gone"
    core.create_namespace({"metadata": {"name": ns}})
    rbac_api = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "bluegreen"}})
    rbac_api.create_namespaced_role(
        ns, {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    )
    core.delete_namespace(ns)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            core.read_namespace(ns)
        except ApiException as e:
            assert e.status == 404
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the namespace never finished deleting")
    assert not [sa for sa in core.list_service_account_for_all_namespaces().items if sa.metadata.namespace == ns]


# -- SelfSubjectRulesReview (kubectl auth can-i --list) ----------------------------------
# What every authenticated user holds through the default ClusterRoleBindings (in the order
# the resolver walks them: ClusterRoleBindings by name, then the namespace's RoleBindings).
BASIC_USER_RULES = [
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
]


def rules_review(api: client.ApiClient, namespace: str) -> dict:
    """The official client's create_self_subject_rules_review, its status as JSON again."""
    review = client.AuthorizationV1Api(api).create_self_subject_rules_review({"spec": {"namespace": namespace}})
    return api.sanitize_for_serialization(review.status)


def kubeconfig_for(sandbox, token: str, path: Path) -> Path:
    """The sandbox's kubeconfig (server, CA) with the token as its only credential."""
    config = yaml.safe_load(Path(sandbox.kubeconfig).read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def test_discovery_lists_selfsubjectrulesreviews_create_only(api):
    listed = {r.name: r for r in client.AuthorizationV1Api(api).get_api_resources().resources}
    rules = listed["selfsubjectrulesreviews"]
    assert (rules.kind, rules.namespaced, rules.verbs) == ("SelfSubjectRulesReview", False, ["create"])
    assert listed["selfsubjectaccessreviews"].verbs == ["create"]


def test_a_rules_review_lists_what_the_role_grants_in_its_namespace_only(api, core, sandbox, ns, shipped):
    role_rules = next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d["kind"] == "Role")["rules"]
    sa = as_token(api, shipped)
    status = rules_review(sa, ns)
    assert status["resourceRules"] == BASIC_USER_RULES + role_rules, "deployments/scale stays one resource"
    assert {"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments/scale"]} in status["resourceRules"]
    assert status["nonResourceRules"][0]["nonResourceURLs"][:4] == ["/api", "/api/*", "/apis", "/apis/*"]
    assert status["incomplete"] is False and "evaluationError" not in status
    # another namespace: nothing of the Role, only what every authenticated user holds
    elsewhere = rules_review(sa, "default")
    assert elsewhere["resourceRules"] == BASIC_USER_RULES
    assert elsewhere["nonResourceRules"] == status["nonResourceRules"]
    # the wire form: the registry answers a new object holding only the status (spec is empty)
    url = f"{sandbox.kube_url}/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    headers = {"Authorization": f"Bearer {shipped}"}
    reply = requests.post(
        url,
        json={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": ns}},
        headers=headers,
        verify=str(sandbox.ca_file),
        timeout=10,
    )
    assert reply.status_code == 201
    assert reply.json() == {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {},
        "status": {
            "resourceRules": status["resourceRules"],
            "nonResourceRules": status["nonResourceRules"],
            "incomplete": False,
        },
    }
    missing = requests.post(url, json={"spec": {}}, headers=headers, verify=str(sandbox.ca_file), timeout=10)
    assert (missing.status_code, missing.json()["message"], missing.json()["reason"]) == (
        400,
        "no namespace on request",
        "BadRequest",
    )


def test_a_rules_review_lists_a_cluster_role_bound_in_the_namespace_and_resolution_errors(api, core, ns):
    rbac_api = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "robot"}})
    reader = f"{ns}-pod-reader"
    rbac_api.create_cluster_role(
        {
            "metadata": {"name": reader},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}],
        }
    )
    try:
        for name, kind, role in (("view-pods", "ClusterRole", reader), ("dangling", "Role", "not-there")):
            rbac_api.create_namespaced_role_binding(
                ns,
                {
                    "metadata": {"name": name},
                    "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
                },
            )
        robot = as_token(api, token_for(core, ns, "robot"))
        status = rules_review(robot, ns)
        # RoleBindings in name order: "dangling" (an error, no rules), then "view-pods"
        assert status["resourceRules"] == BASIC_USER_RULES + [
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}
        ]
        assert status["incomplete"] is False
        assert status["evaluationError"] == f'role.{RBAC} "not-there" not found'
        elsewhere = rules_review(robot, "default")
        assert elsewhere["resourceRules"] == BASIC_USER_RULES, "a RoleBinding grants its ClusterRole in its namespace"
        assert "evaluationError" not in elsewhere
    finally:
        rbac_api.delete_cluster_role(reader)


def test_the_admin_rules_review_is_cluster_admins_wildcards(api, ns):
    status = rules_review(api, ns)
    assert status["resourceRules"][0] == {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    assert status["nonResourceRules"][0] == {"verbs": ["*"], "nonResourceURLs": ["*"]}
    assert status["incomplete"] is False


def test_kubectl_auth_can_i_list_prints_the_rules(kubectl, sandbox, ns, shipped, tmp_path):
    """The real kubectl (protobuf request, its own breakdown/compaction of the rules) with a
    kubeconfig holding the ServiceAccount's token, as deploy/kubernetes/rbac.yaml describes."""
    config = kubeconfig_for(sandbox, shipped, tmp_path / "bluegreen.kubeconfig")

    def can_i_list(namespace: str) -> list[str]:
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(config), "auth", "can-i", "--list", "-n", namespace],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", "no 'the list may be incomplete' warning: RBAC lists everything"
        return [" ".join(line.split()) for line in proc.stdout.splitlines()]

    basic = {
        "selfsubjectreviews.authentication.k8s.io [] [] [create]",
        "selfsubjectaccessreviews.authorization.k8s.io [] [] [create]",
        "selfsubjectrulesreviews.authorization.k8s.io [] [] [create]",
    }
    lines = can_i_list(ns)
    assert lines[0] == "Resources Non-Resource URLs Resource Names Verbs"
    assert {line for line in lines[1:] if not line.startswith("[")} == basic | {
        "services [] [] [get list watch create update delete]",
        "deployments.apps [] [] [get list watch create update delete]",
        "deployments.apps/scale [] [] [patch]",
        "pods [] [] [list watch]",
        "endpointslices.discovery.k8s.io [] [] [list]",
    }
    assert {"[/api/*] [] [get]", "[/version] [] [get]", "[/openapi/*] [] [get]"} <= set(lines)
    elsewhere = can_i_list("default")
    assert {line for line in elsewhere[1:] if not line.startswith("[")} == basic
    # the admin token (system:masters, bound to cluster-admin)
    admin = [" ".join(line.split()) for line in kubectl("auth", "can-i", "--list").stdout.splitlines()]
    assert {"*.* [] [] [*]", "[*] [] [*]"} <= set(admin)
