"""Just enough of the Kubernetes protobuf encoding for what kubectl sends that way.

kubectl's typed commands (``kubectl create namespace``) post
``application/vnd.kubernetes.protobuf`` bodies: the ``k8s\\x00`` magic, then a
runtime.Unknown envelope holding the object's generated.proto message.  The sandbox
decodes Namespace (ObjectMeta's name, generateName, labels, annotations; spec
finalizers), DeleteOptions, TokenRequest (``kubectl create token``), SelfSubjectAccessReview
(``kubectl auth can-i``), SelfSubjectRulesReview (``kubectl auth can-i --list``) and
SelfSubjectReview (``kubectl auth whoami``); other kinds get
415, as a server without a protobuf serializer for them would answer.  Field numbers are
those of k8s.io/api's generated.proto.
"""

from __future__ import annotations

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise ProtobufError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> list[tuple[int, object]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited."""
    out = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i : i + length], i + length
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, value))
    return out


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """apiVersion, kind and the raw message of an encoded object."""
    if not body.startswith(MAGIC):
        raise ProtobufError("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    api_version = kind = ""
    raw = b""
    for number, value in fields(body[len(MAGIC) :]):
        if number == 1:
            for n, v in fields(value):
                if n == 1:
                    api_version = v.decode()
                elif n == 2:
                    kind = v.decode()
        elif number == 2:
            raw = value
    return api_version, kind, raw


def _string_map(entries: list[bytes]) -> dict[str, str]:
    out = {}
    for entry in entries:
        kv = dict(fields(entry))
        out[kv.get(1, b"").decode()] = kv.get(2, b"").decode()
    return out


def object_meta(data: bytes) -> dict:
    meta: dict = {}
    labels, annotations = [], []
    for number, value in fields(data):
        if number == 1:
            meta["name"] = value.decode()
        elif number == 2:
            meta["generateName"] = value.decode()
        elif number == 3:
            meta["namespace"] = value.decode()
        elif number == 6:
            meta["resourceVersion"] = value.decode()
        elif number == 11:
            labels.append(value)
        elif number == 12:
            annotations.append(value)
    if labels:
        meta["labels"] = _string_map(labels)
    if annotations:
        meta["annotations"] = _string_map(annotations)
    return {k: v for k, v in meta.items() if v != ""}


def namespace(raw: bytes) -> dict:
    obj: dict = {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}
    for number, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            finalizers = [v.decode() for n, v in fields(value) if n == 1]
            if finalizers:
                obj["spec"] = {"finalizers": finalizers}
    return obj


def delete_options(raw: bytes) -> dict:
    options: dict = {}
    for number, value in fields(raw):
        if number == 1:
            options["gracePeriodSeconds"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 2:
            pre = {}
            for n, v in fields(value):
                pre["uid" if n == 1 else "resourceVersion"] = v.decode()
            options["preconditions"] = pre
        elif number == 3:
            options["orphanDependents"] = bool(value)
        elif number == 4:
            options["propagationPolicy"] = value.decode()
    return options


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def token_request(raw: bytes) -> dict:
    """authentication/v1 TokenRequest: 1 metadata, 2 spec (1 audiences, 4 expirationSeconds)."""
    obj: dict = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {}, "spec": {}}
    for number, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            for n, v in fields(value):
                if n == 1:
                    obj["spec"].setdefault("audiences", []).append(v.decode())
                elif n == 4:
                    obj["spec"]["expirationSeconds"] = _int64(v)
    return obj


_RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def self_subject_access_review(raw: bytes) -> dict:
    """authorization/v1 SelfSubjectAccessReview: 1 metadata, 2 spec (1 resourceAttributes,
    2 nonResourceAttributes)."""
    obj: dict = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {}, "spec": {}}
    for number, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            for n, v in fields(value):
                names, key = (
                    (_RESOURCE_ATTRIBUTES, "resourceAttributes")
                    if n == 1
                    else (_NON_RESOURCE_ATTRIBUTES, "nonResourceAttributes")
                )
                if n in (1, 2):
                    obj["spec"][key] = {
                        names[k]: x.decode() for k, x in fields(v) if k in names and isinstance(x, bytes) and x
                    }
    return obj


def self_subject_rules_review(raw: bytes) -> dict:
    """authorization/v1 SelfSubjectRulesReview: 1 metadata, 2 spec (1 namespace)."""
    obj: dict = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "metadata": {}, "spec": {}}
    for number, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            for n, v in fields(value):
                if n == 1 and isinstance(v, bytes) and v:
                    obj["spec"]["namespace"] = v.decode()
    return obj


def self_subject_review(raw: bytes) -> dict:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}}


DECODERS = {
    "Namespace": namespace,
    "DeleteOptions": delete_options,
    "TokenRequest": token_request,
    "SelfSubjectAccessReview": self_subject_access_review,
    "SelfSubjectRulesReview": self_subject_rules_review,
    "SelfSubjectReview": self_subject_review,
}


def decode(body: bytes) -> dict:
    api_version, kind, raw = unwrap(body)
    decoder = DECODERS.get(kind)
    if decoder is None:
        raise KeyError(kind)
    return decoder(raw)
