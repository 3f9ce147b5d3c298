"""Airflow provider metadata: registers the BCS connection type and its form fields with Airflow.

(Plugins cannot register connection types; installing this project, as make does, makes it a
provider too.  Airflow 3's UI builds the connection form from "conn-fields".)"""

from bluegreen import __version__
from bluegreen.hooks import bcs_form


def get_provider_info() -> dict:
    return {
        "package-name": "bluegreen",
        "name": "bluegreen",
        "description": "Blue-green releases on Kubernetes and Tencent BCS Mesos.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "bcs",
                "hook-class-name": "bluegreen.hooks.bcs.BcsHook",
                "hook-name": "Tencent BCS (Mesos)",
                "conn-fields": bcs_form.CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": bcs_form.HIDDEN_FIELDS,
                    "relabeling": bcs_form.RELABELING,
                    "placeholders": bcs_form.PLACEHOLDERS,
                },
            },
        ],
    }


# What every release task process imports, loaded once before the task processes are forked, so
# that each starts with it in memory.  Profiled in a task process (py-spy, make bench's stack):
# without the last two, importing Airflow's DagBag module for the task's DAG parse took about 60%
# of a release task's CPU, and importing this plugin (Airflow loads every plugin in every task, for
# its listeners) about 10%; the release step itself about 13%.
TASK_PRELOAD = (
    "airflow.sdk.execution_time.task_runner",
    "kubernetes.client",
    "kubernetes_asyncio.client",
    "airflow.providers.cncf.kubernetes.hooks.kubernetes",
    "requests",
    "bluegreen.dags",
    "bluegreen.operators",
    "bluegreen.sensors",
    "bluegreen.approval",
    "bluegreen.run_notes",
    "bluegreen.platforms.kubernetes",
    "bluegreen.platforms.bcs_mesos",
    "airflow.dag_processing.dagbag",
    "bluegreen.plugin",
)

# The LocalExecutor's list: the scheduler's forkserver starts the executor's workers too, and
# each imported its own module (airflow.executors.local_executor) when it started.  Used as:
#   AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
#   AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=<these, comma-separated>
# in make demo and the tests' services stack (a test checks that each says exactly this); Celery
# workers import TASK_PRELOAD (bluegreen.celery_config: docker-compose.yaml, the Helm values).
# A module that cannot be imported is skipped by the forkserver.
FORKSERVER_PRELOAD = (*TASK_PRELOAD, "airflow.executors.local_executor")


# How long the scheduler sleeps when a loop found nothing to do (Airflow's default: 1 s).  A release
# is a chain of short tasks, and each waits up to this long for the scheduler to see that the one
# before it finished.  make bench, one Kubernetes release (9 scheduler hops): 1 s gave 8.0 s of
# Airflow overhead (hops 0.69 s each), 0.5 s 4.2 s, 0.25 s 2.4 s (0.17 s); the idle scheduler's CPU
# went from about 6% of a core to about 15%.  Set in docker-compose.yaml, the Helm values and
# make demo (a test checks that each says this); the tests' stacks keep 0.5 s (four of them share
# two cores).
SCHEDULER_IDLE_SLEEP = "0.25"


def scheduler_settings() -> dict[str, str]:
    """The scheduler's idle sleep as shipped (SCHEDULER_IDLE_SLEEP), as an environment variable."""
    return {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": SCHEDULER_IDLE_SLEEP}


def forkserver_settings() -> dict[str, str]:
    """The scheduler settings that preload FORKSERVER_PRELOAD, as environment variables."""
    return {
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join(FORKSERVER_PRELOAD),
    }
