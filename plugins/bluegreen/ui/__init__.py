"""The Releases page: every app's releases at a glance, in the Airflow UI.

apps.py     the app configs the page shows (the same files the DAG file reads)
cluster.py  what each app's cluster says now, read (never written) through the platform
            adapters with the app's Airflow connection: concurrently, each read bounded in time
runs.py     what Airflow's metadata DB says: the runs, their task instances, the analysis XComs
view.py     the two joined into one row per app (live color, release in flight, last releases)
html.py     the page itself: plain HTML, CSS and inline SVG (no JS build)
web.py      the FastAPI app the plugin mounts (/bluegreen/releases), for logged-in users only
links.py    the operator extra links of the release tasks (registered as global links)
"""
