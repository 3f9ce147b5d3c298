"""API errors as the real kube-apiserver writes them: ``Status`` objects with its reasons,
codes and message formats (k8s.io/apimachinery/pkg/api/errors and util/validation/field)."""

from __future__ import annotations

from dataclasses import dataclass, field


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> dict:
    d: dict = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found', _details(name, group, plural))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists', _details(name, group, plural)
    )


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        _details(name, group, plural),
    )


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        403, "Forbidden", f'{qualified(plural, group)} "{name}" is forbidden: {why}', _details(name, group, plural)
    )


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def resource_not_found() -> ApiError:
    # What the real server answers for a path it has no handler for.
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        'the body of the request was in an unknown format - accepted media '
        'types include: application/json-patch+json, application/merge-patch+json, '
        'application/apply-patch+yaml, application/strategic-merge-patch+json',
        {},
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


# -- field errors (k8s.io/apimachinery/pkg/util/validation/field) ----------------------

_TYPES = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
}

# Types whose message carries no value (field.Error.ErrorBody).
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong"}


class GoRepr:
    """A value already rendered the way Go's %#v would print it."""

    def __init__(self, text: str):
        self.text = text


def go_repr(value) -> str:
    """Render a bad value as field.Error does: simple types plainly, strings quoted,
    anything else as Go's %#v."""
    if isinstance(value, GoRepr):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{_quote(k)}:{_quote(str(v))}" for k, v in sorted(value.items()))
        return f"map[string]string{{{inner}}}"
    if isinstance(value, list):
        inner = ", ".join(_quote(str(v)) for v in value)
        return f"[]string{{{inner}}}"
    return _quote(str(value))


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class FieldError:
    reason: str  # FieldValueInvalid, FieldValueRequired, ...
    field: str
    value: object = None
    detail: str = ""

    def body(self) -> str:
        kind = _TYPES[self.reason]
        if self.reason in _NO_VALUE:
            s = kind
        elif self.reason == "FieldValueNotSupported":
            s = f"{kind}: {go_repr(self.value)}"
        else:
            s = f"{kind}: {go_repr(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, None, detail)


def invalid(path: str, value, detail: str = "") -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def duplicate(path: str, value) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def not_supported(path: str, value, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(_quote(s) for s in supported)
    return FieldError("FieldValueNotSupported", path, value, detail)


def forbidden_field(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, None, detail)


@dataclass
class Invalid(Exception):
    """422 Invalid, as errors.NewInvalid builds it."""

    kind: str  # "Deployment"
    group: str  # "apps"
    name: str
    errors: list[FieldError] = field(default_factory=list)

    def to_api_error(self) -> ApiError:
        qkind = f"{self.kind}.{self.group}" if self.group else self.kind
        # utilerrors.Aggregate: one error prints alone, several in brackets; duplicates dropped.
        seen: list[str] = []
        for e in self.errors:
            if str(e) not in seen:
                seen.append(str(e))
        agg = seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
        details: dict = {"name": self.name}
        if self.group:
            details["group"] = self.group
        details["kind"] = self.kind
        details["causes"] = [{"reason": e.reason, "message": e.body(), "field": e.field} for e in self.errors]
        return ApiError(422, "Invalid", f'{qkind} "{self.name}" is invalid: {agg}', details)


def raise_invalid(kind: str, group: str, name: str, errs: list[FieldError]) -> None:
    if errs:
        raise Invalid(kind, group, name, errs).to_api_error()
