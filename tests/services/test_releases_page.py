"""The Releases page in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
``make install`` installs) driven by Selenium logs in to the session's api-server through its login
form and opens **Releases** in the Airflow UI while releases run against the sandbox, and checks
what a person sees there: the live color before, the step in progress, the new color after, a
rollback shown as one, a cluster that does not answer shown on its row.  The same run takes the
screenshots the README shows (docs/releases-page.png, docs/releases-app.png,
docs/releases-extra-links.png): into docs/ with BLUEGREEN_SAVE_SCREENSHOTS=1, otherwise into a
temporary folder (a test run leaves the repo as it was).

The page is read inside the UI's frame, as a person sees it; the rows carry ``data-`` attributes
only to find them, the checks read the text shown."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.releases_page import PageBenchConfig, run_page_benchmark  # noqa: E402

# On the second Airflow stack, with test_operate's SECOND_STACK tests.  A test's groups are joined
# into one name (tests/conftest.py), and those tests carry their module's "airflow-services" too:
# with "airflow-services-b" alone these made a third group, which could start a third stack.
pytestmark = [
    pytest.mark.services,
    pytest.mark.xdist_group("airflow-services"),
    pytest.mark.xdist_group("airflow-services-b"),
]

V1, V2, V3 = "registry.local/test:v1", "registry.local/test:v2", "registry.local/test:v3"
FAST = {"soak": "2s", "readiness_timeout": "60s", "check_interval": "0.5s", "defer_after": "2s"}
DOCS = ROOT / "docs"
SCREENSHOTS = DOCS if os.environ.get("BLUEGREEN_SAVE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir())


class Browser:
    """One headless Chromium, logged in to the api-server, looking at the Releases page."""

    def __init__(self, url: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
        if not chromium or not driver:
            pytest.fail("no chromium / chromedriver: `make install` installs Debian's chromium and chromium-driver")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
            options.add_argument(arg)
        options.add_argument("--window-size=1600,900")
        self.url = url
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.driver.set_page_load_timeout(60)

    def quit(self) -> None:
        self.driver.quit()

    def wait(self, condition, timeout: float = 30, what: str = ""):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(lambda d: condition())
        except TimeoutException:
            raise AssertionError(f"not seen within {timeout}s: {what}\n{self.text()[:3000]}") from None

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except Exception as e:  # for messages only
            return f"(no page text: {e})"

    def log_in(self, username: str, password: str) -> None:
        """The auth manager's login form, as a person fills it in, sent back to the Releases page."""
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.url}/plugin/releases")
        self.wait(lambda: "/auth/login" in self.driver.current_url, what="the redirect to the login page")
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, "input[name=password]"), what="the login form")
        self.driver.find_element(By.CSS_SELECTOR, "input[name=username]").send_keys(username)
        self.driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait(lambda: self.driver.current_url.endswith("/plugin/releases"), what="back on /plugin/releases")

    def open(self, path: str = "/plugin/releases") -> None:
        """A page of the UI that frames ours, switched into the frame."""
        from selenium.webdriver.common.by import By

        self.driver.switch_to.default_content()
        self.driver.get(f"{self.url}{path}")
        frame = self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, "iframe"), what="the page's frame")[0]
        self.driver.switch_to.frame(frame)
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, "h1"), what="the page in the frame")

    def reload(self) -> None:
        """The frame's page again (what its own refresh does every few seconds)."""
        from selenium.webdriver.common.by import By

        self.driver.execute_script("location.reload()")
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, "h1"), what="the page reloaded")

    def row(self, app: str) -> dict[str, str]:
        """What a person reads on the app's row, cell by cell."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.common.by import By

        try:
            tr = self.driver.find_element(By.CSS_SELECTOR, f'tr[data-app="{app}"]')
            cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        except (NoSuchElementException, StaleElementReferenceException):
            return {}
        keys = ("app", "live", "idle", "flight", "history", "lock", "links")
        return dict(zip(keys, cells, strict=False))

    def row_error(self, app: str) -> str:
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, f'tr[data-app="{app}"] + tr.cluster-error')
        return found[0].text if found else ""

    def screenshot(self, name: str, app: str | None = None) -> Path:
        """The whole window (the UI around the page), the app's row in sight."""
        from selenium.webdriver.common.by import By

        if app is not None:
            for tr in self.driver.find_elements(By.CSS_SELECTOR, f'tr[data-app="{app}"]'):
                self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", tr)
        self.driver.switch_to.default_content()
        path = SCREENSHOTS / name
        self.driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="module")
def browser(airflow_services):
    started = time.monotonic()
    b = Browser(airflow_services.url)
    try:
        b.log_in("admin", airflow_services.password)
        print(f"\nchromium started and logged in in {time.monotonic() - started:.1f}s")
        yield b
    finally:
        b.quit()


@pytest.fixture
def app(airflow_services, rest, k8s_namespace):
    airflow_services.write_app(k8s_namespace, "kubernetes", namespace=k8s_namespace, **FAST)
    dag_id = airflow_services.dag_id(k8s_namespace)
    rest.wait_for_dag(dag_id, timeout=60)
    return k8s_namespace, dag_id


def release(rest, dag_id: str, run_id: str, conf: dict, state: str = "success") -> None:
    rest.trigger(dag_id, conf, run_id=run_id)
    run = rest.wait_run(dag_id, run_id, timeout=180)
    assert run["state"] == state, (run_id, rest.task_instances(dag_id, run_id))


def first_line(cell: str) -> str:
    return cell.splitlines()[0] if cell else ""


def live_before_bluegreen(kube, namespace: str) -> None:
    """The app's blue deployment (v1) and its Service selecting it, made directly (the seed's
    procedure's starting point): a release then goes from blue to green."""
    import yaml
    from kubernetes import client

    from benchmarks.procedure import k8s_manifest

    client.AppsV1Api(kube).create_namespaced_deployment(namespace, yaml.safe_load(k8s_manifest("blue", V1, 3)))
    svc = yaml.safe_load((ROOT / "dags/apps/test/kubernetes/test-svc.yaml").read_text())
    client.CoreV1Api(kube).create_namespaced_service(namespace, svc)


def test_a_release_seen_on_the_releases_page(airflow_services, rest, kube, app, browser):
    name, dag_id = app
    started = time.monotonic()

    def phase(what: str) -> None:
        print(f"{time.monotonic() - started:5.1f}s {what}")

    live_before_bluegreen(kube, name)  # blue live, as the app ran before its first release here
    phase("blue (v1) live")

    browser.open()
    before = browser.wait(lambda: browser.row(name), what=f"the row of {name}")
    print(f"before: {before}")
    assert first_line(before["live"]) == "blue" and V1 in before["live"], before
    assert "green" in before["idle"] and "not deployed" in before["idle"], before
    assert before["flight"] == "none", before
    assert before["history"] == "none recorded", before
    assert before["lock"] == "free", before

    # a release in flight: the page shows its step, how long it has been in it and what it waits for
    rest.trigger(dag_id, {"image": V2, "soak": "10s"}, run_id="v2")
    steps: list[str] = []

    def in_soak() -> bool:
        browser.reload()
        row = browser.row(name)
        flight = row.get("flight", "")
        lines = flight.splitlines()
        if len(lines) >= 3 and lines[0] == "v2":
            step = lines[2].split(" ")[0]
            if not steps or steps[-1] != step:
                steps.append(step)
        return "waits for soak:" in flight and "left" in flight

    browser.wait(in_soak, timeout=90, what="v2 in its soak")
    during = browser.row(name)
    print(f"during: {during} (steps seen: {steps})")
    assert during["flight"].startswith(f"v2\ngreen {V2}\nsoak"), during
    assert first_line(during["live"]) == "green" and V2 in during["live"], during  # switched, soaking
    assert "blue" in during["idle"] and "ready" in during["idle"], during  # the way back, still running
    assert during["lock"].startswith("locked by v2"), during
    browser.screenshot("releases-page.png", name)
    phase("v2 seen in its soak")

    run = rest.wait_run(dag_id, "v2", timeout=120)
    assert run["state"] == "success", rest.task_instances(dag_id, "v2")
    browser.open()
    after = browser.wait(lambda: browser.row(name), what=f"the row of {name}")
    print(f"after: {after}")
    assert first_line(after["live"]) == "green" and V2 in after["live"], after
    assert after["flight"].startswith("none; last run v2 released"), after
    assert first_line(after["history"]).startswith(f"green {V2} released"), after
    assert after["lock"] == "free", after
    phase("v2 released, seen")

    # a rollback (the soak marked failed, as a person does) is shown as one
    rest.trigger(dag_id, {"image": V3, "soak": "5m"}, run_id="v3")
    rest.wait_task_state(dag_id, "v3", "soak", "deferred", timeout=120)
    # the soak's task in the UI: its extra links lead to the app on the Releases page
    browser.driver.switch_to.default_content()
    browser.driver.get(f"{airflow_services.url}/dags/{dag_id}/runs/v3/tasks/soak/details")
    browser.wait(lambda: "Releases page" in browser.text(), what="the soak task's extra links")
    browser.screenshot("releases-extra-links.png")
    rest.mark_task(dag_id, "v3", "soak", "failed")
    run = rest.wait_run(dag_id, "v3", timeout=120)
    assert run["state"] == "failed", rest.task_instances(dag_id, "v3")
    browser.open()
    rolled = browser.wait(lambda: browser.row(name), what=f"the row of {name}")
    print(f"rolled back: {rolled}")
    assert first_line(rolled["live"]) == "green" and V2 in rolled["live"], rolled
    assert rolled["flight"].startswith("none; last run v3 rolled back"), rolled
    assert first_line(rolled["history"]).startswith(f"blue {V3} rolled back"), rolled
    phase("v3 rolled back, seen")

    # the app's own page: the timeline of its runs, the rollback marked
    from selenium.webdriver.common.by import By

    browser.driver.find_element(By.CSS_SELECTOR, f'tr[data-app="{name}"] a[data-field=detail]').click()
    browser.wait(lambda: browser.driver.find_elements(By.CSS_SELECTOR, "[data-field=timeline] svg"), what="timeline")
    marks = [
        t.text for t in browser.driver.find_elements(By.CSS_SELECTOR, "[data-field=timeline] svg text[data-outcome]")
    ]
    assert marks == ["⟲ rolled back", "released"], marks
    browser.screenshot("releases-app.png")

    # the release tasks' extra links lead to the same page, inside the UI
    links = rest.get(f"/dags/{dag_id}/dagRuns/v3/taskInstances/soak/links")["extra_links"]
    assert links["Releases page"] == f"/plugin/releases/bluegreen/releases/app/{name}", links
    assert links["Service and deployments"].endswith(f"/app/{name}/objects"), links
    assert links["Preview"] is None, links  # no preview Service
    browser.open(links["Service and deployments"])
    objects = browser.wait(lambda: "test-green" in browser.text() and browser.text(), what="the objects page")
    assert '"serving": true' in objects and V2 in objects, objects
    phase("the app's page and the extra links")


def test_the_page_needs_a_login_its_load_time_and_a_cluster_that_does_not_answer(
    airflow_services, browser, control, sandbox
):
    url = f"{airflow_services.url}/bluegreen/releases/"
    plain = requests.Session()
    plain.trust_env = False
    assert plain.get(url, timeout=10).status_code == 401
    to_login = plain.get(url, headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert to_login.status_code == 302 and "/auth/login" in to_login.headers["location"], to_login.headers

    # the page's benchmark, in small (python -m benchmarks releases_page: 50 apps)
    result = run_page_benchmark(airflow_services, sandbox, PageBenchConfig(n=3, repeats=2, prefix="pagesmoke"))
    print(result["line"])
    assert result["shown"] == 3 and result["cluster_errors"] == 0, result
    assert 0 < result["median"] < 30, result

    # one of those apps' cluster stops answering (its Service reads hang): the page still comes,
    # that row says so, the others are read as before
    hung, fine = "pagesmoke-k2", "pagesmoke-k1"
    fault = control.fault("kube", "GET", path=f"/namespaces/{hung}/services", hang=True, times=1000)
    try:
        browser.open()
        started = time.monotonic()
        browser.reload()
        seconds = time.monotonic() - started
        error = browser.wait(lambda: browser.row_error(hung), what=f"the error of {hung}'s row")
        print(f"a hung cluster: the page in {seconds:.1f}s, the row says: {error}")
        assert seconds < 10, seconds
        assert first_line(browser.row(hung)["live"]) == "cluster not answering", browser.row(hung)
        assert "Timeout" in error or "did not answer" in error, error
        assert first_line(browser.row(fine)["live"]) == "blue", browser.row(fine)
    finally:
        control.remove_fault(fault["id"])
