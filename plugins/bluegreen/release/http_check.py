"""The soak's HTTP check: a GET through the Service, as a client of the app would send it."""

from __future__ import annotations

from .health import HttpResult


def http_check(check, url_fields: dict[str, str]) -> HttpResult:
    """GET the check's URL (its placeholders filled from the live Service); TLS is verified for
    https URLs.  ``check``: apps.config.HttpCheck."""
    import requests

    url = check.url.format(**url_fields)
    try:
        resp = requests.get(url, timeout=check.timeout, headers={"Connection": "close"})
    except requests.RequestException as e:
        return HttpResult(False, f"GET {url}: {type(e).__name__}")
    ok = resp.status_code == check.expect_status if check.expect_status else 200 <= resp.status_code < 300
    return HttpResult(ok, f"GET {url} answered {resp.status_code}")
