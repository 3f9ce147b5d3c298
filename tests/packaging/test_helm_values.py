"""deploy/helm/values.yaml against the official Airflow chart's schema (a vendored excerpt, see
README.md here) and against the Secrets it reads (deploy/helm/secrets.example.yaml)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "deploy" / "helm"
VALUES_TEXT = (HELM / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SECRETS = [d for d in yaml.safe_load_all((HELM / "secrets.example.yaml").read_text()) if d]
SCHEMA = json.loads((Path(__file__).parent / "airflow-chart-values.schema.excerpt.json").read_text())

# The chart's values that hold a credential inline (each has a *SecretName counterpart).
INLINE_SECRET_KEYS = [
    ("fernetKey",),
    ("apiSecretKey",),
    ("jwtSecret",),
    ("webserverSecretKey",),
    ("data", "metadataConnection"),
    ("data", "resultBackendConnection"),
    ("data", "brokerUrl"),
    ("redis", "password"),
    ("flower", "password"),
    ("postgresql", "auth"),
    ("dags", "gitSync", "sshKey"),
    ("registry", "connection"),
    ("elasticsearch", "connection"),
    ("opensearch", "connection"),
    ("extraSecrets",),
]
# The key each chart setting reads from its Secret (the chart's values.yaml documents these).
CHART_SECRET_KEYS = {
    "fernetKeySecretName": "fernet-key",
    "apiSecretKeySecretName": "api-secret-key",
    "jwtSecretName": "jwt-secret",
    "metadataSecretName": "connection",
    "resultBackendSecretName": "connection",
    "brokerUrlSecretName": "connection",
}


def validate(values) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(values)]


def commented_block(after: str) -> dict:
    """The YAML commented out under the comment line containing ``after`` (an alternative the
    values file documents), uncommented."""
    lines = VALUES_TEXT.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line[4:])
    return yaml.safe_load("\n".join(block))


def secret_names(node, path=()) -> dict[tuple, str]:
    """Every Secret the values name, by where: *SecretName / secretName keys, gitSync's secrets."""
    found = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (
                key.lower().endswith("secretname") or key in ("credentialsSecret", "sshKeySecret")
            ):
                found[(*path, key)] = value
            else:
                found.update(secret_names(value, (*path, key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.update(secret_names(item, (*path, i)))
    return found


def example_secret(name: str) -> dict:
    matches = [s for s in SECRETS if s["kind"] == "Secret" and s["metadata"]["name"] == name]
    assert len(matches) == 1, f"secret {name!r} is not in deploy/helm/secrets.example.yaml (exactly once)"
    return {**matches[0].get("stringData", {}), **matches[0].get("data", {})}


def test_values_validate_against_the_chart_schema():
    assert validate(VALUES) == []


def test_the_schema_excerpt_catches_what_helm_would_not():
    """The check above can fail: a misspelt key, a wrong type, an unknown executor are refused."""
    assert validate({**VALUES, "executer": "CeleryExecutor"})
    assert validate({**VALUES, "executor": "celery"})
    assert validate({**VALUES, "workers": {"serviceaccount": {"name": "bluegreen"}}})
    assert validate({**VALUES, "env": [{"name": "BLUEGREEN_APPS_DIR"}]})
    assert validate({**VALUES, "volumeMounts": [{"name": "bluegreen-apps", "mountpath": "/x"}]})


def test_the_commented_git_sync_alternative_is_valid_too():
    alternative = commented_block("Alternative, git-sync")
    assert alternative["dags"]["gitSync"]["enabled"] is True
    assert validate({**VALUES, **alternative}) == []


def test_executor_image_and_version():
    assert VALUES["executor"] == "CeleryExecutor"
    assert "executor: KubernetesExecutor" in VALUES_TEXT  # the documented switch
    dockerfile = (ROOT / "Dockerfile").read_text()
    [base] = set(re.findall(r"^FROM apache/airflow:(\S+)-python", dockerfile, re.M))
    assert VALUES["airflowVersion"] == base
    image = VALUES["images"]["airflow"]
    assert image["repository"] and image["repository"] != "apache/airflow" and image["tag"]
    # the chart's own DAG volume is off: the DAG file is the one baked into the image's DAGs folder
    assert VALUES["dags"]["persistence"]["enabled"] is False and VALUES["dags"]["gitSync"]["enabled"] is False
    assert "deploy/dags/release_apps.py /opt/airflow/dags/release_apps.py" in dockerfile


def test_apps_come_from_read_only_config_maps():
    env = {e["name"]: e["value"] for e in VALUES["env"]}
    mounts = {m["mountPath"]: m for m in VALUES["volumeMounts"]}
    volumes = {v["name"]: v for v in VALUES["volumes"]}
    apps_mount = mounts[env["BLUEGREEN_APPS_DIR"]]
    assert apps_mount["readOnly"] is True
    assert "configMap" in volumes[apps_mount["name"]]
    # the manifests: a sibling folder, so that an app config names them ../manifests/<file>
    manifests = mounts[str(Path(env["BLUEGREEN_APPS_DIR"]).parent / "manifests")]
    assert manifests["readOnly"] is True and "configMap" in volumes[manifests["name"]]


def test_no_credential_inline():
    for path in INLINE_SECRET_KEYS:
        node = VALUES
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        assert node is None, f"{'.'.join(path)} holds a credential inline: use its *SecretName"
    assert VALUES["postgresql"]["enabled"] is False  # the subchart's default passwords
    for e in VALUES.get("env", []):
        assert not re.search(r"(?i)password|token|secret|://[^/@]*:[^/@]*@", f"{e['name']}={e['value']}"), e
    assert not re.search(r"(?i)^\s*[\w-]*(password|token)\s*:\s*\S", VALUES_TEXT, re.M)


def test_every_secret_named_is_in_the_example_with_the_key_read():
    names = secret_names(VALUES)
    assert names, "the values name no Secret"
    for path, name in names.items():
        keys = example_secret(name)
        if path[-1] in CHART_SECRET_KEYS:
            assert CHART_SECRET_KEYS[path[-1]] in keys, (path, name, sorted(keys))
    for item in VALUES["secret"]:
        assert item["secretKey"] in example_secret(item["secretName"]), item
        assert item["envName"].startswith("AIRFLOW_CONN_")


def test_the_example_secrets_hold_placeholders_only():
    for secret in SECRETS:
        for key, value in secret.get("stringData", {}).items():
            if key == "AIRFLOW_CONN_BLUEGREEN_K8S":
                conn = json.loads(value)
                assert conn == {"conn_type": "kubernetes", "extra": {"in_cluster": True}}
            else:
                assert re.search(r"<[^>]+>", value), (secret["metadata"]["name"], key)
            if value.lstrip().startswith("{"):
                conn = json.loads(value)
                for field in ("login", "password"):
                    assert field not in conn or re.fullmatch(r"<[^>]+>", conn[field]), (key, field)
        assert not secret.get("data"), "data: holds base64 values; the example uses stringData placeholders"


def test_workers_and_triggerer_run_as_the_bluegreen_service_account():
    for component in ("workers", "triggerer"):
        assert VALUES[component]["serviceAccount"] == {"create": False, "name": "bluegreen"}, component
    assert "deploy/kubernetes/rbac.yaml" in VALUES_TEXT


def test_the_rbac_file_creates_that_service_account():
    rbac = ROOT / "deploy" / "kubernetes" / "rbac.yaml"
    if not rbac.exists():
        pytest.skip("deploy/kubernetes/rbac.yaml is not written yet")
    docs = [d for d in yaml.safe_load_all(rbac.read_text()) if d]
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "bluegreen" for d in docs)
    bound = [s for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding") for s in d.get("subjects", [])]
    assert any(s["kind"] == "ServiceAccount" and s["name"] == "bluegreen" for s in bound)
    # the documented binding, in each app namespace, of that file's Role to Airflow's account
    [role] = re.findall(r"create rolebinding \S+ --role=(\S+) --serviceaccount=airflow:bluegreen(?=\s)", VALUES_TEXT)
    assert any(d["kind"] == "Role" and d["metadata"]["name"] == role for d in docs)


def test_the_api_server_reads_the_clusters_as_the_read_only_viewer_account():
    """The Releases page runs in the api-server: its account is the viewer one, which the viewer
    file creates and whose Role the documented binding names (that Role only reads)."""
    assert VALUES["apiServer"]["serviceAccount"] == {"create": False, "name": "bluegreen-viewer"}
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "rbac-viewer.yaml").read_text()) if d]
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "bluegreen-viewer" for d in docs)
    [role] = re.findall(
        r"create rolebinding \S+ --role=(\S+) --serviceaccount=airflow:bluegreen-viewer(?=\s)", VALUES_TEXT
    )
    [rules] = [d["rules"] for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == role]
    assert {verb for rule in rules for verb in rule["verbs"]} <= {"get", "list"}
