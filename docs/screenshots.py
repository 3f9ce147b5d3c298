"""Regenerates the README's two screenshots of operating a release from the UI, from a real run:
docs/rollback-mark-failed.png and docs/approve-required-action.png.

    .venv/bin/python docs/screenshots.py [--out DIR]

Starts a sandbox (tests/conftest.py's launcher) and the Airflow services stack the services tests
run (tests/services/conftest.py: api-server, scheduler, dag-processor, triggerer on a fresh
PostgreSQL database, dropped afterwards), writes the seed's test app into its apps dir (the DAG
``release_test``, Service ``default/test``) and drives a headless Chromium at 1600x900, logged in
through the login form (tests/services/test_releases_page.py's ``Browser``):

1. ``v1`` (blue) and ``v2`` (green) released over REST: green v2 live;
2. ``screenshot-soak`` releases v3 to blue with a 30m soak; once the soak is deferred and has logged
   a few observations, its task panel (Logs) with the **✓/✗** menu (*Mark Task Instance as...*)
   open: ``rollback-mark-failed.png``; then **Failed** and **Confirm** are clicked, as the README
   says, and the run is checked: failed, ``rollback`` success, the Service back on green v2, blue gone;
3. ``screenshot-approve`` asks for v4 with ``approval: true`` and is parked at ``approve``: its
   **Required Action** tab: ``approve-required-action.png``; then rejected (over REST) and checked.

The sandbox takes slot ``BLUEGREEN_TEST_SLOT_OFFSET`` of the tests' port scheme (e.g. 2 beside a
``make test``), 7 (the benchmarks' slot) when unset.  ``--out`` writes the images elsewhere (a try
that leaves docs/ alone).  On a failure the browser's window is saved as ``screenshots-failure.png``
in the run's temporary directory (printed) and the services' log tails are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

APP, NAMESPACE, DAG_ID = "test", "default", "release_test"
V1, V2, V3, V4 = (f"registry.local/test:v{i}" for i in range(1, 5))
SLOT = int(os.environ.get("BLUEGREEN_TEST_SLOT_OFFSET") or 7)


def log(started: float, what: str) -> None:
    print(f"{time.monotonic() - started:6.1f}s {what}", flush=True)


def xpath_one(browser, xpath: str, what: str, timeout: float = 30):
    """The first displayed element ``xpath`` finds, once there is one."""
    from selenium.webdriver.common.by import By

    def found():
        shown = [e for e in browser.driver.find_elements(By.XPATH, xpath) if e.is_displayed()]
        return shown[0] if shown else None

    return browser.wait(found, timeout=timeout, what=what)


def save(browser, path: Path) -> None:
    browser.driver.switch_to.default_content()
    time.sleep(0.5)  # let the last transition (a menu's or a tab's) settle
    browser.driver.save_screenshot(str(path))
    print(f"screenshot: {path}", flush=True)


def open_task(browser, url: str, run_id: str, task_id: str, tab: str = "") -> None:
    """The DAG's grid with the task's panel (``tab``: the panel's tab's path, e.g. required_actions)."""
    browser.driver.switch_to.default_content()
    browser.driver.get(f"{url}/dags/{DAG_ID}/runs/{run_id}/tasks/{task_id}" + (f"/{tab}" if tab else ""))


def mark_soak_failed(browser, services, started: float, out: Path, kube) -> None:
    """rollback-mark-failed.png: the soak of a running release, its ✓/✗ menu open; then Failed, Confirm."""
    from services.airflow_rest import WaitTimeout
    from services.test_smoke import Cluster

    rest = services.rest
    run_id = "screenshot-soak"
    rest.trigger(DAG_ID, {"image": V3, "soak": "30m", "reason": "screenshot"}, run_id=run_id)
    rest.wait_task_state(DAG_ID, run_id, "soak", "deferred", timeout=180)
    rest.wait_trigger_running(DAG_ID, run_id, "soak", timeout=60)
    deadline = time.monotonic() + 60
    while rest.task_log(DAG_ID, run_id, "soak").count("to go") < 3 and time.monotonic() < deadline:
        time.sleep(1)  # a few observations in the log (one each 30 s), as a soak that has run a while shows
    log(started, f"{run_id}: v3 on blue, soaking (deferred)")

    open_task(browser, services.url, run_id, "soak")
    browser.wait(lambda: "to go" in browser.text(), timeout=60, what="the soak's log in its panel")
    xpath_one(browser, "//*[normalize-space()='Deferred']", "the soak's state badge")
    button = xpath_one(browser, "//button[@aria-label='Mark Task Instance as...']", "the ✓/✗ button")
    button.click()
    failed = xpath_one(browser, "//*[@role='menuitem'][normalize-space()='Failed']", "the menu's Failed")
    xpath_one(browser, "//*[@role='menuitem'][normalize-space()='Success']", "the menu's Success")
    save(browser, out / "rollback-mark-failed.png")

    # what the README says next: Failed, then Confirm; the rollback runs
    failed.click()
    browser.wait(lambda: "Affected Tasks: 1" in browser.text(), what="the dialog's affected tasks")
    confirm = "//*[@role='dialog']//button[normalize-space()='Confirm']"
    for attempt in range(3):  # Confirm is disabled until the dialog's dry run has answered
        button = xpath_one(browser, confirm, "the dialog's Confirm")
        browser.wait(button.is_enabled, what="Confirm enabled")
        button.click()
        try:
            rest.wait_task_state(DAG_ID, run_id, "soak", "failed", timeout=15)
            break
        except WaitTimeout:
            print(f"Confirm clicked, the soak not failed yet (attempt {attempt + 1})", flush=True)
    else:
        raise AssertionError("Confirm did not mark the soak failed")
    run = rest.wait_run(DAG_ID, run_id, timeout=180)
    tasks = rest.task_instances(DAG_ID, run_id)
    assert run["state"] == "failed" and tasks["soak"] == "failed" and tasks["rollback"] == "success", (run, tasks)
    cluster = Cluster(kube, NAMESPACE)
    assert cluster.selector() == {"app": "test-green"}, cluster.snapshot()
    assert cluster.deployments() == {"test-green": V2}, cluster.snapshot()
    log(started, f"{run_id}: marked failed in the UI, rolled back (green v2 serving): {run.get('note')}")


def approve_waiting(browser, services, started: float, out: Path, kube) -> None:
    """approve-required-action.png: a release that asks for approval, parked at approve."""
    from services.test_smoke import Cluster

    from bluegreen.sensors import MIN_DEFERRAL_SECONDS

    rest = services.rest
    run_id = "screenshot-approve"
    rest.trigger(DAG_ID, {"image": V4, "approval": True, "reason": "screenshot"}, run_id=run_id)
    rest.wait_task_state(DAG_ID, run_id, "approve", "awaiting_input", timeout=180)
    paused = time.monotonic()
    log(started, f"{run_id}: v4 on blue, awaiting input at approve")

    open_task(browser, services.url, run_id, "approve", "required_actions")
    browser.wait(lambda: f"Switch {APP} to blue ({V4})?" in browser.text(), timeout=60, what="the approval's text")
    xpath_one(browser, "//button[normalize-space()='Approve']", "the Approve button")
    xpath_one(browser, "//button[normalize-space()='Reject']", "the Reject button")
    xpath_one(browser, "//*[normalize-space()='Awaiting Input']", "the approve task's state badge")
    save(browser, out / "approve-required-action.png")

    # answered no sooner than a person would (tests/services/test_operate.py says why), rejected
    time.sleep(max(0.0, paused + MIN_DEFERRAL_SECONDS + 1 - time.monotonic()))
    rest.hitl_respond(DAG_ID, run_id, "approve", ["Reject"])
    run = rest.wait_run(DAG_ID, run_id, timeout=120)
    tasks = rest.task_instances(DAG_ID, run_id)
    assert run["state"] == "failed" and tasks["rollback"] == "success", (run, tasks)
    assert Cluster(kube, NAMESPACE).deployments() == {"test-green": V2}
    log(started, f"{run_id}: rejected, rolled back")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="where the PNGs go (default: docs/)")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bluegreen-screenshots-"))

    import kubernetes
    from conftest import SandboxProcess  # the launcher the tests use
    from services.conftest import running_services
    from services.test_releases_page import Browser, release

    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="bluegreen-screenshots-stack-"))
    sandbox = SandboxProcess(base / "sandbox" / "state", index=SLOT)
    endpoints = sandbox.start()
    log(started, f"sandbox up (slot {SLOT}): {endpoints.kube_url}")
    try:
        with running_services(base / "airflow", endpoints.environment()) as services:
            services.write_app(APP, "kubernetes")  # the seed's app as it is: release_test, default/test
            services.rest.wait_for_dag(DAG_ID, timeout=90)
            kube = kubernetes.config.new_client_from_config(config_file=str(endpoints.kubeconfig))
            release(services.rest, DAG_ID, "v1", {"image": V1, "soak": "2s"})
            release(services.rest, DAG_ID, "v2", {"image": V2, "soak": "2s"})
            log(started, "v1 and v2 released: green v2 live")

            browser = Browser(services.url)
            try:
                # the page's viewport, what a screenshot holds, 1600x900 (the window is 1600x900
                # with the browser's own frame in it)
                browser.driver.execute_cdp_cmd(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": 1600, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                )
                browser.log_in("admin", services.password)
                log(started, "chromium logged in")
                mark_soak_failed(browser, services, started, out, kube)
                approve_waiting(browser, services, started, out, kube)
            except BaseException:
                failure = base / "screenshots-failure.png"
                try:
                    browser.driver.switch_to.default_content()
                    browser.driver.save_screenshot(str(failure))
                    print(f"failed; the browser's window: {failure}")
                except Exception as e:  # the browser itself may be what failed
                    print(f"failed; no screenshot of the window ({e})")
                print(services.diagnostics())
                raise
            finally:
                browser.quit()
    finally:
        sandbox.stop()
    log(started, f"done: {out / 'rollback-mark-failed.png'}, {out / 'approve-required-action.png'}")


if __name__ == "__main__":
    main()
