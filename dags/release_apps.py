"""Release DAGs, one per app config in dags/apps/*.yaml (adding an app is adding a file).

Kept light on purpose: it reads YAML and builds DAG objects; no cluster is
contacted and no client library is imported while Airflow parses it.
"""

import os
from pathlib import Path

from bluegreen.dags import load_release_dags

APPS_DIR = Path(os.environ.get("BLUEGREEN_APPS_DIR") or Path(__file__).parent / "apps")

globals().update(load_release_dags(APPS_DIR))
