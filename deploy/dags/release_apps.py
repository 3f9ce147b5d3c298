# bluegreen's release DAGs for an Airflow install: one DAG per app config in $BLUEGREEN_APPS_DIR.
# Keep the word airflow (lower case) in this file: Airflow's DAG discovery safe mode skips a file without it.
import os

from bluegreen.dags import load_release_dags

globals().update(load_release_dags(os.environ["BLUEGREEN_APPS_DIR"]))
