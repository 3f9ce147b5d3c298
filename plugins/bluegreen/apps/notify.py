"""The ``notify`` of an app config: who is told what about its releases.

    notify:
      - slack: slack_releases          # a Slack incoming webhook connection (type slackwebhook)
        events: [rolled_back, failed, awaiting_approval]   # default: every event
      - webhook: releases_hook         # an http connection: its URL, a bearer token in its password
        timeout: 5s                    # how long a receiver may take (10s)
      - email: smtp_default            # an smtp connection
        to: [oncall@example.com]
        from: releases@example.com     # default: the connection's extra from_email

A receiver names an Airflow connection, never a URL or a token: secrets live in connections only.
Pure data: the Airflow layer (``bluegreen.notifiers``) sends the messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# In the order a release meets them.
EVENTS = ("started", "awaiting_approval", "switched", "released", "rolled_back", "failed")
KINDS = ("slack", "webhook", "email")
RECEIVER_FIELDS = (*KINDS, "events", "timeout", "to", "from")
# Airflow's own rule for a connection id (letters, digits, '_', '.', '-'): a URL is refused, so
# that a webhook's secret never lands in a config file.
CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")


@dataclass(frozen=True)
class Receiver:
    kind: str  # slack | webhook | email
    conn_id: str
    events: tuple[str, ...] = EVENTS
    timeout: float = 10.0
    to: tuple[str, ...] = ()  # email only
    from_email: str | None = None  # email only

    def wants(self, event: str) -> bool:
        return event in self.events

    @classmethod
    def from_json(cls, data: dict) -> Receiver:
        return cls(**{**data, "events": tuple(data.get("events") or EVENTS), "to": tuple(data.get("to") or ())})


@dataclass(frozen=True)
class Notify:
    receivers: tuple[Receiver, ...] = ()

    def for_event(self, event: str) -> tuple[Receiver, ...]:
        return tuple(r for r in self.receivers if r.wants(event))

    @property
    def events(self) -> tuple[str, ...]:
        """The events at least one receiver wants, in EVENTS' order."""
        return tuple(e for e in EVENTS if self.for_event(e))

    @classmethod
    def from_json(cls, data: dict) -> Notify:
        return cls(receivers=tuple(Receiver.from_json(r) for r in data.get("receivers") or ()))


def load_notify(v) -> Notify | None:
    """``notify`` of a config (``v``: apps.config._Validator), or None when it has none."""
    raw = v.raw.get("notify")
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        v.fail("notify", raw, "must be a list of receivers, each with one of slack, webhook or email")
    return Notify(receivers=tuple(_load_receiver(v, i, item) for i, item in enumerate(raw)))


def _load_receiver(v, i: int, item) -> Receiver:
    where = f"notify[{i}]"
    if not isinstance(item, dict):
        v.fail(where, item, "must be a mapping with one of slack, webhook or email (a connection id)")
    for key in item:
        if key not in RECEIVER_FIELDS:
            v.fail(f"{where}.{key}", _shown(item[key]), f"unknown field (known: {', '.join(RECEIVER_FIELDS)})")
    kinds = [k for k in KINDS if k in item]
    if len(kinds) != 1:
        v.fail(where, sorted(item), "must name exactly one of slack, webhook or email (a connection id)")
    kind = kinds[0]
    sub = type(v)(item, v.source, prefix=f"{where}.")
    conn_id = sub.string(kind)
    if not CONN_ID.match(conn_id):
        v.fail(
            f"{where}.{kind}",
            _shown(conn_id),
            "must be an Airflow connection id (letters, digits, '_', '.', '-'); the URL and any token "
            "go into the connection",
        )
    events = _load_events(v, where, item.get("events"))
    to: tuple[str, ...] = ()
    from_email = None
    if kind == "email":
        raw_to = item.get("to")
        to_list = [raw_to] if isinstance(raw_to, str) else raw_to
        if not isinstance(to_list, list) or not to_list:
            v.fail(f"{where}.to", raw_to, "must be an address or a list of addresses")
        for address in to_list:
            if not isinstance(address, str) or not EMAIL.match(address):
                v.fail(f"{where}.to", address, "must be an e-mail address like oncall@example.com")
        to = tuple(to_list)
        from_email = sub.string("from", default=None)
        if from_email is not None and not EMAIL.match(from_email):
            v.fail(f"{where}.from", from_email, "must be an e-mail address like releases@example.com")
    else:
        for key in ("to", "from"):
            if key in item:
                v.fail(f"{where}.{key}", item[key], "is for email receivers only")
    return Receiver(
        kind=kind,
        conn_id=conn_id,
        events=events,
        timeout=sub.duration("timeout", default="10s", minimum=0.1),
        to=to,
        from_email=from_email,
    )


def _shown(value):
    """A value for an error message: a URL may carry a token (a Slack webhook's path does), so
    it is not repeated in the DAG's import error."""
    return "(a URL, not shown: it may hold a secret)" if isinstance(value, str) and "://" in value else value


def _load_events(v, where: str, raw) -> tuple[str, ...]:
    if raw is None:
        return EVENTS
    if not isinstance(raw, list) or not raw:
        v.fail(f"{where}.events", raw, f"must be a list of events (any of {', '.join(EVENTS)})")
    for event in raw:
        if event not in EVENTS:
            v.fail(f"{where}.events", event, f"unknown event (known: {', '.join(EVENTS)})")
    return tuple(e for e in EVENTS if e in raw)
