"""The chaos suite: randomized blue-green releases under faults, with the invariants checked
(``python -m chaos``, ``make chaos``; chaos/README.md).

  scenario.py    what a run does, drawn from its seed
  faults.py      API faults, pod faults, a person's commands, process kills, and their timeline
  drivers/       direct.py (the release steps in killable processes, Airflow's task semantics),
                 processes.py (those processes), airflow.py (the real Airflow services over REST)
  followup.py    what a person does after a run, as the README tells them
  observe.py     the monitor (pods, audit log) and the client loop
  invariants.py  the checks
  runner.py      one run from start to end, and many side by side; session.py: the sandbox and stack
  report.py      the table and the last line
  apps.py        a run's app, read and changed with clients that are not bluegreen's
  repro.py       the defects found, reproduced on purpose
"""
