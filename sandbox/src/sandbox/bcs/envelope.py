"""The BCS response envelope and error codes (bcs-common/common/http/respone.go, errorCode.go).

``{"result": bool, "code": int, "message": str, "data": any}``; result is code == 0.
A failing response's message is prefixed with the process name, "(bcs-scheduler):...":
createResponeEx takes it from os.Args[0].  Failures built with InternalError carry
``data: {}`` (it passes an empty map); successes built with GetRespone carry the data
given, ``null`` for writes.

Driver and scheduler write their bodies with go-restful's Response.Write, which sets
no Content-Type, so net/http sniffs ``text/plain; charset=utf-8``; the sandbox sends
the same.  Only the driver's header filter uses WriteHeaderAndEntity (JSON).
"""

from __future__ import annotations

import json

from aiohttp import web

SCHEDULER = "bcs-scheduler"
DRIVER = "bcs-mesos-driver"
STORAGE = "bcs-storage"

# bcs-common/common/errorCode.go (AdditionErrorCode = 1405000)
SUCCESS = 0
COMM_REQUEST_DATA_ERR = 1405008  # BcsErrCommRequestDataErr
COMM_HTTP_DO = 1405009  # BcsErrCommHttpDo: "do http request failed!"
COMM_JSON_DECODE = 1405010  # BcsErrCommJsonDecode: "json decode failed!"
STORAGE_LIST_FAIL = 1405085  # "list resource failed."
STORAGE_NOT_EXIST = 1405087  # "resource does not exist."
SCHED_COMMON = 1405200  # BcsErrMesosSchedCommon
SCHED_RESOURCE_EXIST = 1405201  # BcsErrMesosSchedResourceExist
SCHED_NOT_FOUND = 1405202  # BcsErrMesosSchedNotFound
DRIVER_PARAMETER_ERR = 1405231  # "there is some error in the parameters"
DRIVER_HTTP_FILTER_FAILED = 1405234

JSON_DECODE_STR = "json decode failed!"
DRIVER_PARAMETER_ERR_STR = "there is some error in the parameters"
STORAGE_LIST_FAIL_STR = "list resource failed."
STORAGE_NOT_EXIST_STR = "resource does not exist."


def dumps(obj) -> str:
    """Compact JSON as Go's encoder writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def body(code: int, message: str, data, process: str) -> dict:
    if code != SUCCESS:
        message = f"({process}):{message}"
    return {"result": code == SUCCESS, "code": code, "message": message, "data": data}


def text_response(payload: str, status: int = 200) -> web.Response:
    return web.Response(text=payload, status=status, content_type="text/plain", charset="utf-8")


def success(data=None) -> web.Response:
    """GetRespone(BcsSuccess, "success", data)."""
    return text_response(dumps(body(SUCCESS, "success", data, SCHEDULER)))


def failure(code: int, message: str, process: str = SCHEDULER) -> web.Response:
    """InternalError(code, message): HTTP 200, data {}."""
    return text_response(dumps(body(code, message, {}, process)))


def storage(data, code: int = SUCCESS, message: str = "") -> web.Response:
    """bcs-storage lib.ReturnRest: "success" when no message, ``{}`` when data is nil."""
    if code == SUCCESS and not message:
        message = "success"
    if data is None:
        data = {}
    return text_response(dumps(body(code, message, data, STORAGE)))


def gateway(status: int, message: str) -> web.Response:
    """What the API gateway's bkbcs-auth plugin answers (apisix core.response.exit with a table)."""
    return web.json_response({"code": status, "result": False, "message": message}, status=status, dumps=dumps)


def driver_filter(message: str) -> web.Response:
    """bcs-mesos-driver filter.go: HTTP 400, APIRespone written as an entity, message unprefixed."""
    return web.json_response(
        {"result": False, "code": DRIVER_HTTP_FILTER_FAILED, "message": message, "data": None}, status=400, dumps=dumps
    )


def restful_not_found() -> web.Response:
    """go-restful's answer when no route matches."""
    return text_response("404: Page Not Found", status=404)


def restful_method_not_allowed() -> web.Response:
    return text_response("405: Method Not Allowed", status=405)


class BcsError(Exception):
    """A failure the handlers turn into an envelope."""

    def __init__(self, code: int, message: str, process: str = SCHEDULER):
        super().__init__(message)
        self.code = code
        self.message = message
        self.process = process

    def response(self) -> web.Response:
        return failure(self.code, self.message, self.process)


class PlainError(Exception):
    """A failure upstream writes as bare text (err.Error() of a plain Go error), HTTP 200."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def response(self) -> web.Response:
        return text_response(self.text)
