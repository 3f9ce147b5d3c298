"""Who is asking, and what they may do: authentication, the authorization filter, the
TokenRequest subresource and the three self reviews.

* The sandbox's own token (the one in its kubeconfig) is ``kubernetes-admin`` in
  ``system:masters``: allowed everything, as a kubeadm admin.conf is.
* ``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`` (what ``kubectl create
  token`` calls) issues a JWT for the ServiceAccount: ``sub``
  ``system:serviceaccount:<ns>:<name>``, the API server's audience by default,
  ``expirationSeconds`` 3600 by default (at least 600).  It is signed with a key of this
  sandbox process (HS256, where a real cluster uses its service-account key pair), and
  authenticates as ``system:serviceaccount:<ns>:<name>`` in groups
  ``system:serviceaccounts``, ``system:serviceaccounts:<ns>``, ``system:authenticated``
  for as long as it has not expired and the ServiceAccount (same uid) exists.
* Any other bearer token, or none: 401, before authorization.
* Every request of an authenticated user is authorized by RBAC (rbac.py): 403 with the
  real Status when denied.
* ``selfsubjectaccessreviews`` (``kubectl auth can-i``) and ``selfsubjectreviews``
  (``kubectl auth whoami``) answer for the requesting user, with the same evaluation;
  ``selfsubjectrulesreviews`` (``kubectl auth can-i --list``) list the user's RBAC rules in
  ``spec.namespace`` (pkg/registry/authorization/selfsubjectrulesreview/rest.go: 400 "no
  namespace on request" without one; the response's spec is empty, as the registry builds a
  new object holding only the status).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import time
import uuid

from aiohttp import web

from . import errors, rbac
from . import resources as R

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = API_AUDIENCE
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # "may not specify a duration less than 10 minutes"
ADMIN = rbac.User("kubernetes-admin", (rbac.MASTERS, rbac.AUTHENTICATED))
USER = web.RequestKey("kube_user", rbac.User)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_account_user(ns: str, name: str, uid: str = "") -> rbac.User:
    return rbac.User(
        f"system:serviceaccount:{ns}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{ns}", rbac.AUTHENTICATED),
        uid,
    )


class Authenticator:
    def __init__(self, admin_token: str, store):
        self.admin_token = admin_token
        self.store = store
        # the signing key lives as long as this process: a restarted sandbox's tokens are new
        self._key = secrets.token_bytes(32)

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, sa: dict, audiences: list[str], seconds: int) -> tuple[str, float]:
        now = time.time()
        meta = sa["metadata"]
        claims = {
            "aud": audiences,
            "exp": int(now + seconds),
            "iat": int(now),
            "nbf": int(now),
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": meta["namespace"],
                "serviceaccount": {"name": meta["name"], "uid": meta["uid"]},
            },
            "sub": f"system:serviceaccount:{meta['namespace']}:{meta['name']}",
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
        return head + "." + self._sign(head), claims["exp"]

    def authenticate(self, token: str | None) -> rbac.User | None:
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN
        head, _, signature = token.rpartition(".")
        if head.count(".") != 1 or not hmac.compare_digest(signature.encode(), self._sign(head).encode()):
            return None
        try:
            claims = json.loads(_unb64(head.split(".")[1]))
            sa_claim = claims["kubernetes.io"]
            ns, name, uid = sa_claim["namespace"], sa_claim["serviceaccount"]["name"], sa_claim["serviceaccount"]["uid"]
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time()
        if claims.get("exp", 0) < now or claims.get("nbf", 0) > now + 60 or API_AUDIENCE not in claims.get("aud", []):
            return None
        sa = self.store.peek(R.SERVICEACCOUNTS, ns, name)
        if sa is None or sa["metadata"].get("uid") != uid or sa["metadata"].get("deletionTimestamp"):
            return None  # the ServiceAccount was deleted (or deleted and made again): its tokens are void
        return service_account_user(ns, name, uid)


def check(request: web.Request, user: rbac.User, store) -> None:
    """The authorization filter: raise the 403 the API server writes when RBAC says no."""
    a = rbac.attributes(user, request.method, request.path, request.query)
    allowed, reason = rbac.authorize(store, a)
    if not allowed:
        raise rbac.forbidden(a, reason)


# -- TokenRequest ----------------------------------------------------------------------
def token_request(authn: Authenticator, ns: str, name: str, body: dict) -> dict:
    sa = authn.store.peek(R.SERVICEACCOUNTS, ns, name)
    if sa is None:
        raise errors.not_found("serviceaccounts", "", name)
    spec = body.get("spec") or {}
    seconds = spec.get("expirationSeconds")
    seconds = DEFAULT_EXPIRATION if seconds is None else seconds
    if seconds < MIN_EXPIRATION:
        errors.raise_invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            [errors.invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")],
        )
    if seconds > 1 << 32:
        errors.raise_invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            [errors.invalid("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds")],
        )
    audiences = spec.get("audiences") or [API_AUDIENCE]
    token, expires = authn.issue(sa, audiences, seconds)
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": seconds},
        "status": {"token": token, "expirationTimestamp": _iso(expires)},
    }


# -- self reviews ----------------------------------------------------------------------
def review(resource: R.Resource, user: rbac.User, store, body: dict) -> dict:
    if resource is R.SELFSUBJECTREVIEWS:
        info: dict = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": info},
        }
    spec = body.get("spec") or {}
    if resource is R.SELFSUBJECTRULESREVIEWS:
        return rules_review(user, store, spec.get("namespace") or "")
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra is not None and nra is not None:
        errors.raise_invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            [
                errors.invalid(
                    "spec.nonResourceAttributes",
                    errors.GoRepr("{...}"),
                    "cannot be specified in combination with resourceAttributes",
                )
            ],
        )
    if ra is None and nra is None:
        errors.raise_invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            [
                errors.invalid(
                    "spec.resourceAttributes",
                    errors.GoRepr("null"),
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            ],
        )
    if ra is not None:
        a = rbac.Attributes(
            user,
            ra.get("verb", ""),
            True,
            namespace=ra.get("namespace", ""),
            group=ra.get("group", ""),
            version=ra.get("version", ""),
            resource=ra.get("resource", ""),
            subresource=ra.get("subresource", ""),
            name=ra.get("name", ""),
        )
    else:
        a = rbac.Attributes(user, nra.get("verb", ""), False, path=nra.get("path", ""))
    allowed, reason = rbac.authorize(store, a)
    status: dict = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


def rules_review(user: rbac.User, store, namespace: str) -> dict:
    if not namespace:
        raise errors.bad_request("no namespace on request")
    resource_rules, non_resource_rules, error = rbac.rules_for(store, user, namespace)
    # RBAC is the only rule resolver here, and it always resolves completely
    status: dict = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}
    if error:
        status["evaluationError"] = error
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {},
        "status": status,
    }
