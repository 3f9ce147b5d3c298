"""The base URL each HTTP hook (BCS, Prometheus) builds from its Airflow connection: one rule for both
(bluegreen.hooks.connection_url)."""

from types import SimpleNamespace

import pytest

from bluegreen.hooks.bcs import BcsHook
from bluegreen.hooks.prometheus import PrometheusHook
from bluegreen.release.model import ReleaseError


def conn(host, port=None, schema=None):
    return SimpleNamespace(host=host, port=port, schema=schema, extra_dejson={}, login=None, password=None)


def bcs(connection):
    return BcsHook("bcs_test", connection=connection).base_url


def prometheus(connection):
    hook = PrometheusHook("prom_test")
    hook.__dict__["connection"] = connection
    return hook.base_url


@pytest.mark.parametrize(
    "url_of, default_scheme",
    [(bcs, "https"), (prometheus, "http")],
    ids=["bcs", "prometheus"],
)
def test_host_schema_port_and_path_make_one_url(url_of, default_scheme):
    assert url_of(conn("gw.example.com")) == f"{default_scheme}://gw.example.com"
    assert url_of(conn("gw.example.com", port=8443, schema="https")) == "https://gw.example.com:8443"
    # a URL with a path: the port goes after the host name, not after the path
    assert url_of(conn("https://gw.example.com/bcsapi/v4/", port=8443)) == "https://gw.example.com:8443/bcsapi/v4"
    # a URL that names its port keeps it
    assert url_of(conn("http://10.0.0.1:9090", port=1234)) == "http://10.0.0.1:9090"


def test_an_empty_host_is_refused_naming_the_connection():
    with pytest.raises(ValueError, match="connection bcs_test: host"):
        bcs(conn(""))
    with pytest.raises(ReleaseError, match="connection prom_test: host"):
        prometheus(conn(None))
