"""The app configs the Releases page shows: the files the DAG file reads (``BLUEGREEN_APPS_DIR``, else
``apps/`` beside the DAGs folder's files, as dags/release_apps.py and deploy/dags/release_apps.py
look for them).  Each file is read again only when it changed (its mtime and size)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..apps.config import AppConfig, load_app
from ..apps.errors import ConfigError


@dataclass(frozen=True)
class AppEntry:
    """One config file: its app, or why it does not validate."""

    path: Path
    app: AppConfig | None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.app.name if self.app else self.path.stem

    @property
    def dag_id(self) -> str:
        return self.app.dag_id if self.app else f"release_{self.path.stem.replace('-', '_')}"


def apps_dir() -> Path:
    configured = os.environ.get("BLUEGREEN_APPS_DIR")
    if configured:
        return Path(configured)
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")) / "apps"


_cache: dict[Path, tuple[tuple[float, int], AppEntry]] = {}
_lock = threading.Lock()


def load_entries(directory: Path | None = None) -> list[AppEntry]:
    """Every ``*.yaml`` of the apps directory, sorted by app name."""
    directory = directory or apps_dir()
    entries = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            st = path.stat()
        except OSError:
            continue
        stamp = (st.st_mtime, st.st_size)
        with _lock:
            cached = _cache.get(path)
        if cached and cached[0] == stamp:
            entries.append(cached[1])
            continue
        try:
            entry = AppEntry(path, load_app(path))
        except ConfigError as e:
            entry = AppEntry(path, None, str(e))
        except OSError as e:
            entry = AppEntry(path, None, f"{path}: {e}")
        with _lock:
            _cache[path] = (stamp, entry)
        entries.append(entry)
    return sorted(entries, key=lambda e: e.name)


def by_dag_id(directory: Path | None = None) -> dict[str, AppEntry]:
    return {e.dag_id: e for e in load_entries(directory)}
