"""TLS verification as bluegreen's connections say it, for every HTTP hook (BCS, Prometheus)."""

from __future__ import annotations


def tls_verify(extras: dict) -> bool | str:
    """What ``requests`` gets as ``verify``: on unless the connection's extra ``verify`` explicitly
    turns it off; against the extra ``ca_bundle`` when one is named (else the system CAs)."""
    if str(extras.get("verify", True)).lower() in ("false", "0", "no"):
        return False
    return extras.get("ca_bundle") or True
