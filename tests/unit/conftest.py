from pathlib import Path

import pytest

from bluegreen.apps.config import load_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app():
    return load_app(ROOT / "dags" / "apps" / "test.yaml")


@pytest.fixture
def platform(app):
    from .fakes import FakePlatform

    return FakePlatform(app)
