"""The sandbox's Kubernetes API through the official Python client and plain HTTPS:
auth, discovery, every verb, the three patch types, selectors, field validation and the
errors a real kube-apiserver answers with (a rejected request changes nothing)."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException
from polling import wait_for

# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(sandbox):
    """requests against the API with the kubeconfig's CA and token (for raw status checks)."""
    s = requests.Session()
    s.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment beats s.verify
    s.verify = str(sandbox.ca_file)
    s.headers["Authorization"] = f"Bearer {sandbox.token}"
    return s


def deployment(name="web", replicas=2, image="shop/web:v1", labels=None, **spec):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}]
                },
            },
            **spec,
        },
    }


def service(name="web", selector=None, **spec):
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector or {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }


def error_of(call) -> dict:
    with pytest.raises(ApiException) as info:
        call()
    body = json.loads(info.value.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == info.value.status
    return body


def plain(obj) -> dict:
    """A client model as the JSON the server sent (for comparing before/after)."""
    return client.ApiClient().sanitize_for_serialization(obj)


# -- auth and discovery -----------------------------------------------------------------------


def test_every_path_wants_the_token(sandbox, http):
    for path in ("/version", "/api", "/apis", "/api/v1/namespaces", "/openapi/v3"):
        r = requests.get(sandbox.kube_url + path, verify=http.verify, timeout=10)
        assert r.status_code == 401, path
        assert r.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
        bad = requests.get(
            sandbox.kube_url + path, verify=http.verify, timeout=10, headers={"Authorization": "Bearer nope"}
        )
        assert bad.status_code == 401
    assert http.get(sandbox.kube_url + "/version", timeout=10).json()["major"] == "1"


def test_discovery_lists_resources_verbs_and_subresources(api):
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    resources = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert (
        resources["pods"].namespaced and "watch" in resources["pods"].verbs and resources["pods"].short_names == ["po"]
    )
    assert resources["namespaces"].namespaced is False
    assert set(resources["services"].verbs) >= {"create", "delete", "get", "list", "patch", "update", "watch"}
    apps = {r.name: r for r in client.AppsV1Api(api).get_api_resources().resources}
    assert apps["deployments"].kind == "Deployment" and apps["deployments"].short_names == ["deploy"]
    assert "deployments/status" in apps and "deployments/scale" in apps
    assert apps["deployments/scale"].kind == "Scale"
    assert set(apps["replicasets"].verbs) == {"get", "list", "watch"}
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "discovery.k8s.io"} <= groups
    assert client.DiscoveryV1Api(api).get_api_resources().resources[0].name == "endpointslices"


def test_openapi_v3_advertises_field_validation(sandbox, http):
    index = http.get(sandbox.kube_url + "/openapi/v3", timeout=10).json()
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = http.get(sandbox.kube_url + url, timeout=10).json()
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in [p["name"] for p in op["parameters"]]
    containers = doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_unknown_paths_and_methods(sandbox, http, ns):
    r = http.get(f"{sandbox.kube_url}/api/v1/namespaces/{ns}/widgets", timeout=10)
    assert r.status_code == 404 and r.json()["message"] == "the server could not find the requested resource"
    # replica sets are read-only here, and discovery says so
    r = http.post(f"{sandbox.kube_url}/apis/apps/v1/namespaces/{ns}/replicasets", json={}, timeout=10)
    assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"
    r = http.post(f"{sandbox.kube_url}/api/v1/namespaces/{ns}/services/x", json={}, timeout=10)
    assert r.status_code == 405


# -- namespaces -------------------------------------------------------------------------------


def test_namespaces(core, unique_name):
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    created = core.create_namespace({"metadata": {"name": unique_name}})
    assert created.status.phase == "Active" and created.metadata.labels["kubernetes.io/metadata.name"] == unique_name
    assert error_of(lambda: core.create_namespace({"metadata": {"name": unique_name}}))["reason"] == "AlreadyExists"
    bad = error_of(lambda: core.create_namespace({"metadata": {"name": "Not.A.Label"}}))
    assert bad["code"] == 422 and bad["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123 label" in bad["message"]
    assert error_of(lambda: core.delete_namespace("default"))["code"] == 403
    gone = json.loads(core.delete_namespace(unique_name, _preload_content=False).data)
    assert gone["kind"] == "Namespace" and gone["status"]["phase"] == "Terminating"
    wait_for(lambda: unique_name not in {n.metadata.name for n in core.list_namespace().items})


def test_objects_in_a_missing_namespace(apps, unique_name):
    body = error_of(lambda: apps.create_namespaced_deployment(unique_name, deployment()))
    assert body["code"] == 404 and body["message"] == f'namespaces "{unique_name}" not found'
    assert body["details"] == {"name": unique_name, "kind": "namespaces"}


# -- create / get / list ---------------------------------------------------------------------


def test_create_fills_server_fields_and_defaults(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment(replicas=None))
    assert d.metadata.uid and d.metadata.creation_timestamp and int(d.metadata.resource_version) > 0
    assert d.metadata.generation == 1
    spec = d.spec
    assert spec.replicas == 1 and spec.revision_history_limit == 10 and spec.progress_deadline_seconds == 600
    assert spec.strategy.type == "RollingUpdate"
    assert (spec.strategy.rolling_update.max_surge, spec.strategy.rolling_update.max_unavailable) == ("25%", "25%")
    c = spec.template.spec.containers[0]
    assert (c.termination_message_path, c.image_pull_policy, c.ports[0].protocol) == (
        "/dev/termination-log",
        "IfNotPresent",
        "TCP",
    )
    assert spec.template.spec.restart_policy == "Always" and spec.template.spec.dns_policy == "ClusterFirst"
    got = apps.read_namespaced_deployment("web", ns)
    assert got.metadata.uid == d.metadata.uid
    nf = error_of(lambda: apps.read_namespaced_deployment("nope", ns))
    assert nf["code"] == 404 and nf["message"] == 'deployments.apps "nope" not found'
    assert nf["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    dup = error_of(lambda: apps.create_namespaced_deployment(ns, deployment()))
    assert dup["code"] == 409 and dup["message"] == 'deployments.apps "web" already exists'


def test_resource_versions_are_one_increasing_counter(apps, core, ns):
    a = apps.create_namespaced_deployment(ns, deployment("a"))
    s = core.create_namespaced_service(ns, service("s"))
    b = apps.create_namespaced_deployment(ns, deployment("b"))
    assert int(a.metadata.resource_version) < int(s.metadata.resource_version) < int(b.metadata.resource_version)
    listed = apps.list_namespaced_deployment(ns)
    assert int(listed.metadata.resource_version) >= int(b.metadata.resource_version)


def test_label_and_field_selectors(core, ns):
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "web", "env": "dev"}),
        ("c", {"tier": "db"}),
        ("d", {}),
    ]:
        core.create_namespaced_service(
            ns, {"metadata": {"name": name, "labels": labels}, "spec": {"ports": [{"port": 80}]}}
        )

    def names(**kw):
        return sorted(s.metadata.name for s in core.list_namespaced_service(ns, **kw).items)

    assert names(label_selector="tier=web") == ["a", "b"]
    assert names(label_selector="tier==web,env!=prod") == ["b"]
    assert names(label_selector="env!=prod") == ["b", "c", "d"]
    assert names(label_selector="env in (prod, dev)") == ["a", "b"]
    assert names(label_selector="tier notin (web)") == ["c", "d"]
    assert names(label_selector="env") == ["a", "b"]
    assert names(label_selector="!env") == ["c", "d"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c", label_selector="tier") == ["a", "b"]
    assert names(field_selector=f"metadata.namespace={ns}") == ["a", "b", "c", "d"]
    everywhere = client.CoreV1Api(core.api_client).list_service_for_all_namespaces(field_selector="metadata.name=a")
    assert ns in {s.metadata.namespace for s in everywhere.items}
    assert error_of(lambda: core.list_namespaced_service(ns, field_selector="spec.type=x"))["code"] == 400


def test_list_chunks_with_limit_and_continue(core, ns):
    for i in range(5):
        core.create_namespaced_service(ns, {"metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80}]}})
    first = core.list_namespaced_service(ns, limit=2)
    assert [s.metadata.name for s in first.items] == ["s0", "s1"] and first.metadata._continue
    second = core.list_namespaced_service(ns, limit=2, _continue=first.metadata._continue)
    third = core.list_namespaced_service(ns, limit=2, _continue=second.metadata._continue)
    assert [s.metadata.name for s in second.items + third.items] == ["s2", "s3", "s4"]
    assert not third.metadata._continue


# -- validation errors change nothing ------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, field, reason, text",
    [
        (
            lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "other"}),
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            "`selector` does not match template `labels`",
        ),
        (
            lambda d: d["spec"]["template"]["spec"].update(containers=[]),
            "spec.template.spec.containers",
            "FieldValueRequired",
            "Required value",
        ),
        (
            lambda d: d["spec"].update(replicas=-1),
            "spec.replicas",
            "FieldValueInvalid",
            "Invalid value: -1: must be greater than or equal to 0",
        ),
        (lambda d: d["metadata"].update(name="Web_1"), "metadata.name", "FieldValueInvalid", "RFC 1123 subdomain"),
        (
            lambda d: d["metadata"].pop("name"),
            "metadata.name",
            "FieldValueRequired",
            "name or generateName is required",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"].append(
                copy.deepcopy(d["spec"]["template"]["spec"]["containers"][0])
            ),
            "spec.template.spec.containers[1].name",
            "FieldValueDuplicate",
            'Duplicate value: "web"',
        ),
    ],
)
def test_invalid_deployments_are_rejected(apps, ns, mutate, field, reason, text):
    body = deployment()
    mutate(body)
    err = error_of(lambda: apps.create_namespaced_deployment(ns, body))
    assert err["code"] == 422 and err["reason"] == "Invalid"
    assert err["details"]["kind"] == "Deployment" and err["details"]["group"] == "apps"
    causes = {(c["field"], c["reason"]) for c in err["details"]["causes"]}
    assert (field, reason) in causes
    assert text in err["message"] and err["message"].startswith(
        f'Deployment.apps "{body["metadata"].get("name", "")}" is invalid: '
    )
    assert apps.list_namespaced_deployment(ns).items == []


def test_selector_mismatch_message_is_the_real_one(apps, ns):
    body = deployment()
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    err = error_of(lambda: apps.create_namespaced_deployment(ns, body))
    assert err["message"] == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other"}: `selector` does not match template `labels`'
    )


def test_updates_that_the_api_rejects_change_nothing(apps, ns):
    apps.create_namespaced_deployment(ns, deployment())
    before = plain(apps.read_namespaced_deployment("web", ns))
    err = error_of(
        lambda: apps.patch_namespaced_deployment(
            "web",
            ns,
            {
                "spec": {
                    "selector": {"matchLabels": {"app": "web", "x": "y"}},
                    "template": {"metadata": {"labels": {"x": "y"}}},
                }
            },
        )
    )
    assert err["code"] == 422
    assert any(
        c["field"] == "spec.selector" and c["message"].endswith(": field is immutable")
        for c in err["details"]["causes"]
    )
    err = error_of(lambda: apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": -3}}))
    assert err["details"]["causes"][0]["field"] == "spec.replicas"
    after = plain(apps.read_namespaced_deployment("web", ns))
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]


# -- replace ----------------------------------------------------------------------------------


def test_replace_with_stale_resource_version_conflicts(apps, ns):
    apps.create_namespaced_deployment(ns, deployment())
    current = apps.read_namespaced_deployment("web", ns)
    current.spec.replicas = 3
    replaced = apps.replace_namespaced_deployment("web", ns, current)
    assert replaced.spec.replicas == 3 and replaced.metadata.generation == 2
    current.spec.replicas = 5  # still carries the old resourceVersion
    err = error_of(lambda: apps.replace_namespaced_deployment("web", ns, current))
    assert err["code"] == 409 and err["reason"] == "Conflict"
    assert err["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
        'please apply your changes to the latest version and try again'
    )
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3
    # without a resourceVersion the replace is unconditional
    body = deployment(replicas=4)
    assert apps.replace_namespaced_deployment("web", ns, body).spec.replicas == 4
    assert error_of(lambda: apps.replace_namespaced_deployment("nope", ns, deployment("nope")))["code"] == 404
    wrong = deployment("other")
    assert error_of(lambda: apps.replace_namespaced_deployment("web", ns, wrong))["code"] == 400


def test_generation_follows_spec_changes_not_status(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment(replicas=1))
    wait_for(lambda: (apps.read_namespaced_deployment("web", ns).status.observed_generation or 0) >= 1)
    labelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"extra": "1"}}})
    assert labelled.metadata.generation == d.metadata.generation
    scaled = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 2}})
    assert scaled.metadata.generation == d.metadata.generation + 1
    # as in the real deployment strategy, annotations count too (they are copied to ReplicaSets)
    annotated = apps.patch_namespaced_deployment("web", ns, {"metadata": {"annotations": {"note": "x"}}})
    assert annotated.metadata.generation == d.metadata.generation + 2


# -- patch ------------------------------------------------------------------------------------


def test_strategic_merge_patch_merges_lists_by_key(apps, ns):
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    apps.create_namespaced_deployment(ns, body)
    patched = apps.patch_namespaced_deployment(
        "web",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "shop/web:v2",
                                "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                            },
                            {"name": "sidecar", "image": "shop/log:v1"},
                        ]
                    }
                }
            }
        },
    )
    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["web", "sidecar"]
    assert containers[0].image == "shop/web:v2" and containers[0].ports[0].container_port == 8080
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "3"), ("C", "4")]
    # $patch: delete removes one item by its merge key
    patched = apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    )
    assert [c.name for c in patched.spec.template.spec.containers] == ["web"]


def test_service_selector_patches_merge_keys(core, ns):
    core.create_namespaced_service(ns, service(selector={"app": "web", "color": "blue"}))
    smp = core.patch_namespaced_service("web", ns, {"spec": {"selector": {"color": "green"}}})
    assert smp.spec.selector == {"app": "web", "color": "green"}
    merge = core.patch_namespaced_service(
        "web", ns, {"spec": {"selector": {"track": "stable"}}}, _content_type="application/merge-patch+json"
    )
    assert merge.spec.selector == {"app": "web", "color": "green", "track": "stable"}
    # a JSON patch (or null in a merge patch) is what drops a key
    dropped = core.patch_namespaced_service("web", ns, [{"op": "remove", "path": "/spec/selector/track"}])
    assert dropped.spec.selector == {"app": "web", "color": "green"}
    nulled = core.patch_namespaced_service("web", ns, {"spec": {"selector": {"color": None}}})
    assert nulled.spec.selector == {"app": "web"}


def test_json_patch_ops_and_failing_test(apps, ns, http, sandbox):
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    ok = apps.patch_namespaced_deployment(
        "web",
        ns,
        [
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
        ],
    )
    assert ok.spec.replicas == 2 and ok.metadata.labels["extra"] == "yes"
    before = apps.read_namespaced_deployment("web", ns).metadata.resource_version
    err = error_of(
        lambda: apps.patch_namespaced_deployment(
            "web",
            ns,
            [
                {"op": "replace", "path": "/spec/replicas", "value": 5},
                {"op": "test", "path": "/spec/replicas", "value": 1},
            ],
        )
    )
    assert err["code"] == 422 and err["reason"] == "Invalid"
    assert err["details"]["causes"][0]["message"] == "testing value /spec/replicas failed: test failed"
    err = error_of(
        lambda: apps.patch_namespaced_deployment("web", ns, [{"op": "remove", "path": "/metadata/labels/nothing"}])
    )
    assert err["code"] == 422
    assert apps.read_namespaced_deployment("web", ns).metadata.resource_version == before
    url = f"{sandbox.kube_url}/apis/apps/v1/namespaces/{ns}/deployments/web"
    r = http.patch(url, data="{}", headers={"Content-Type": "application/xml"}, timeout=10)
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = http.patch(url, data="{not json", headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    # server-side apply is not implemented by the sandbox: it says so with a 415
    r = http.patch(
        url, data="spec: {replicas: 3}", headers={"Content-Type": "application/apply-patch+yaml"}, timeout=10
    )
    assert r.status_code == 415
    assert apps.read_namespaced_deployment("web", ns).metadata.resource_version == before


def test_patch_with_resource_version_is_conditional(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment())
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "1"}}})
    err = error_of(
        lambda: apps.patch_namespaced_deployment(
            "web", ns, {"metadata": {"resourceVersion": d.metadata.resource_version}, "spec": {"replicas": 9}}
        )
    )
    assert err["code"] == 409 and err["reason"] == "Conflict"
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2


def test_field_validation_strict_warn_ignore(sandbox, http, apps, ns):
    url = f"{sandbox.kube_url}/apis/apps/v1/namespaces/{ns}/deployments"
    body = deployment()
    body["spec"]["foo"] = 1
    body["spec"]["template"]["spec"]["containers"][0]["bogus"] = True
    strict = http.post(url + "?fieldValidation=Strict", json=body, timeout=10)
    assert strict.status_code == 400 and strict.json()["reason"] == "BadRequest"
    assert strict.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
        'error: unknown field "spec.template.spec.containers[0].bogus", '
        'unknown field "spec.foo"'
    )
    assert apps.list_namespaced_deployment(ns).items == []
    dup = http.post(
        url + "?fieldValidation=Strict",
        timeout=10,
        headers={"Content-Type": "application/json"},
        data=json.dumps(deployment("dup"))[:-1] + ', "kind": "Deployment"}',
    )
    assert dup.status_code == 400 and 'duplicate field "kind"' in dup.json()["message"]
    warn = http.post(url + "?fieldValidation=Warn", json=body, timeout=10)
    assert warn.status_code == 201 and "foo" not in warn.json()["spec"]
    assert '299 - "unknown field \\"spec.foo\\""' in warn.headers["Warning"]
    body["metadata"]["name"] = "ignored"
    ignore = http.post(url + "?fieldValidation=Ignore", json=body, timeout=10)
    assert ignore.status_code == 201 and "Warning" not in ignore.headers
    patch = http.patch(
        url + "/web?fieldValidation=Strict",
        json={"spec": {"foo": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=10,
    )
    assert patch.status_code == 422 and 'strict decoding error: unknown field "spec.foo"' in patch.json()["message"]
    wrong_type = http.post(
        url, json={**deployment("typed"), "spec": {**deployment()["spec"], "replicas": "3"}}, timeout=10
    )
    assert wrong_type.status_code == 400
    assert (
        "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        in wrong_type.json()["message"]
    )
    garbage = http.post(url, data="{", headers={"Content-Type": "application/json"}, timeout=10)
    assert garbage.status_code == 400


# -- scale subresource ----------------------------------------------------------------------------


def test_scale_subresource(apps, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 3
    err = error_of(lambda: apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": -1}}))
    assert err["code"] == 422


# -- services ---------------------------------------------------------------------------------


def test_service_defaults_and_allocation(core, ns, sandbox):
    import ipaddress

    from sandbox.settings import Settings

    s = core.create_namespaced_service(ns, service())
    assert s.spec.type == "ClusterIP" and s.spec.session_affinity == "None"
    assert s.spec.cluster_ip == s.spec.cluster_ips[0] and s.spec.ip_families == ["IPv4"]
    assert s.spec.ports[0].protocol == "TCP" and s.spec.internal_traffic_policy == "Cluster"
    assert ipaddress.ip_address(s.spec.cluster_ip).is_loopback
    np = core.create_namespaced_service(ns, service("np", type="NodePort"))
    port = np.spec.ports[0].node_port
    assert port and port != Settings().node_port_range[0] - 1
    clash = error_of(
        lambda: core.create_namespaced_service(
            ns, service("np2", type="NodePort", ports=[{"port": 80, "nodePort": port}])
        )
    )
    assert clash["code"] == 422
    assert clash["message"] == (
        f'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated'
    )
    out = error_of(
        lambda: core.create_namespaced_service(
            ns, service("np3", type="NodePort", ports=[{"port": 80, "nodePort": 80}])
        )
    )
    assert "provided port is not in the valid range. The range of valid ports is" in out["message"]
    err = error_of(lambda: core.patch_namespaced_service("web", ns, {"spec": {"clusterIP": "127.1.2.3"}}))
    assert err["code"] == 422 and err["details"]["causes"][0]["field"].startswith("spec.clusterIP")
    assert core.read_namespaced_service("web", ns).spec.cluster_ip == s.spec.cluster_ip
    # the nodePort survives an update that leaves it out
    body = service("np", type="NodePort")
    body["metadata"]["labels"] = {"v": "2"}
    assert core.replace_namespaced_service("np", ns, body).spec.ports[0].node_port == port


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"ports": [{"port": 0}]}, "spec.ports[0].port"),
        ({"ports": [{"port": 80, "protocol": "ICMP"}]}, "spec.ports[0].protocol"),
        ({"ports": [{"port": 80, "name": "a"}, {"port": 81}]}, "spec.ports[1].name"),
        ({"ports": []}, "spec.ports"),
        ({"ports": [{"port": 80}], "selector": {"app": "no spaces"}}, "spec.selector"),
        ({"ports": [{"port": 80}], "type": "Weird"}, "spec.type"),
        ({"ports": [{"port": 80, "targetPort": "8080"}]}, "spec.ports[0].targetPort"),
    ],
)
def test_invalid_services(core, ns, spec, field):
    err = error_of(lambda: core.create_namespaced_service(ns, {"metadata": {"name": "bad"}, "spec": spec}))
    assert err["code"] == 422 and field in {c["field"] for c in err["details"]["causes"]}
    assert core.list_namespaced_service(ns).items == []


def test_service_name_is_a_dns1035_label(core, ns):
    err = error_of(lambda: core.create_namespaced_service(ns, service("1web")))
    assert "DNS-1035 label" in err["message"]


# -- delete -----------------------------------------------------------------------------------


def test_delete_answers_like_the_real_server(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    status = apps.delete_namespaced_deployment("web", ns)
    assert status.status == "Success" and status.details.name == "web" and status.details.kind == "deployments"
    assert error_of(lambda: apps.delete_namespaced_deployment("web", ns))["code"] == 404
    core.create_namespaced_service(ns, service())
    deleted = core.delete_namespaced_service("web", ns, _preload_content=False)
    assert json.loads(deleted.data)["kind"] == "Service"  # services return the deleted object
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    bad = error_of(lambda: apps.delete_namespaced_deployment("web", ns, propagation_policy="Sometimes"))
    assert bad["code"] == 422 and bad["details"]["kind"] == "DeleteOptions"
    assert apps.read_namespaced_deployment("web", ns).metadata.deletion_timestamp is None


def test_watch_on_the_legacy_watch_path(sandbox, http, core, ns):
    core.create_namespaced_service(ns, service("a"))
    r = http.get(f"{sandbox.kube_url}/api/v1/watch/namespaces/{ns}/services?timeoutSeconds=1", stream=True, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    events = [json.loads(line) for line in r.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"], e["object"]["kind"]) for e in events] == [
        ("ADDED", "a", "Service")
    ]


def test_v1_endpoints_carry_the_deprecation_warning(sandbox, http, core, ns):
    r = http.get(f"{sandbox.kube_url}/api/v1/namespaces/{ns}/endpoints", timeout=10)
    assert r.status_code == 200 and r.json()["kind"] == "EndpointsList"
    assert r.headers["Warning"] == '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
    r = http.get(f"{sandbox.kube_url}/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", timeout=10)
    assert r.status_code == 200 and "Warning" not in r.headers
