"""The base URL of an HTTP connection, as bluegreen's hooks (BCS, Prometheus) read it."""

from __future__ import annotations


def connection_url(connection, default_scheme: str) -> str | None:
    """The connection's host as a URL: a full URL, or a host name (then the connection's schema,
    else ``default_scheme``); the connection's port is added when the host names none, before any
    path.  None when the host is empty (each hook says what it needed there)."""
    host = (connection.host or "").rstrip("/")
    if not host:
        return None
    if "://" not in host:
        host = f"{connection.schema or default_scheme}://{host}"
    scheme, rest = host.split("://", 1)
    hostname, slash, path = rest.partition("/")
    if connection.port and ":" not in hostname:
        hostname = f"{hostname}:{connection.port}"
    return f"{scheme}://{hostname}{slash}{path}"
