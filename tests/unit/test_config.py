"""App configs: every problem names the file, the field and the value."""

import shutil
from pathlib import Path

import pytest
import yaml

from bluegreen.apps.config import load_app
from bluegreen.apps.durations import format_duration, parse_duration
from bluegreen.apps.images import check_image
from bluegreen.release.model import ConfigError

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "dags" / "apps"


@pytest.fixture
def apps_copy(tmp_path):
    shutil.copytree(APPS, tmp_path / "apps")
    return tmp_path / "apps"


def write(apps_copy, **changes):
    raw = yaml.safe_load((apps_copy / "test.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    path = apps_copy / "test.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_seed_app_loads(apps_copy):
    app = load_app(apps_copy / "test.yaml")
    assert app.selector_for("blue") == {"app": "test-blue"} and app.selector_for("green") == {"app": "test-green"}
    assert app.color_of({"app": "test-green"}) == "green" and app.color_of({"app": "x"}) is None
    assert app.dag_id == "release_test" and app.readiness_timeout == 300


@pytest.mark.parametrize(
    "changes, field, value",
    [
        ({"replicas": "three"}, "replicas", "three"),
        ({"replicas": 0}, "replicas", 0),
        ({"platform": "nomad"}, "platform", "nomad"),
        ({"soak": "5 minutes"}, "soak", "5 minutes"),
        ({"namespace": "Bad_NS"}, "namespace", "Bad_NS"),
        ({"connection_id": None}, "connection_id", None),
        ({"colour": "blue"}, "colour", "blue"),
        ({"default_image": "Registry/UPPER:tag"}, "default_image", "Registry/UPPER:tag"),
        ({"deployment_prefix": "shop"}, "manifests.blue metadata.name", "test-blue"),
        ({"container": "nope"}, "container", "nope"),
        ({"http_check": {"url": "ftp://x"}}, "http_check.url", "ftp://x"),
        ({"http_check": {"url": "http://x:{nodeport}/"}}, "http_check.url", "http://x:{nodeport}/"),
        ({"windows": [{"days": ["funday"], "start": "02:00", "end": "04:00"}]}, "windows[0].days", ["funday"]),
        ({"windows": [{"days": ["tue"], "start": "25:00", "end": "04:00"}]}, "windows[0].start", "25:00"),
        (
            {"windows": [{"days": ["tue"], "start": "02:00", "end": "04:00", "timezone": "Mars/Base"}]},
            "windows[0].timezone",
            "Mars/Base",
        ),
        (
            {
                "manifests": {
                    "blue": "test/kubernetes/test-blue.yaml",
                    "green": "missing.yaml",
                    "service": "test/kubernetes/test-svc.yaml",
                }
            },
            "manifests.green",
            "missing.yaml",
        ),
    ],
)
def test_bad_configs_name_file_field_and_value(apps_copy, changes, field, value):
    path = write(apps_copy, **changes)
    with pytest.raises(ConfigError) as err:
        load_app(path)
    assert err.value.field == field and err.value.value == value
    assert str(err.value).startswith(f"{path}: {field}={value!r}: ")


def test_a_service_selector_that_does_not_tell_the_colors_apart_is_refused(apps_copy):
    svc = apps_copy / "test" / "kubernetes" / "test-svc.yaml"
    doc = yaml.safe_load(svc.read_text())
    doc["spec"]["selector"] = {"nothing": "x"}
    svc.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="lacks the selector key"):
        load_app(apps_copy / "test.yaml")


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "registry.local/test:v2-ready-after-3s",
        "localhost:5000/team/app@sha256:" + "a" * 64,
        "a.b.c:443/x/y/z:TAG_1.0-rc",
    ],
)
def test_valid_images(image):
    assert check_image(image) is None


@pytest.mark.parametrize(
    "image",
    ["", "team/UPPER", "hub.docker.com:xxxx/xxxxxx:blue", "app:", "app:-bad", "app with space", "app:" + "x" * 129],
)
def test_invalid_images(image):
    assert check_image(image)


def test_durations():
    assert parse_duration("90") == 90 and parse_duration("1h30m") == 5400 and parse_duration(2.5) == 2.5
    assert format_duration(5400) == "1h30m" and format_duration(30) == "30s"
    for bad in ("5 minutes", "-1", "h", True):
        with pytest.raises(ValueError):
            parse_duration(bad)
