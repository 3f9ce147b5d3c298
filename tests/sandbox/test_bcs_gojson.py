"""The sandbox's copy of Go's encoding/json behaviour (messages reach BCS clients verbatim)."""

from __future__ import annotations

import json

import pytest

from sandbox import gojson
from sandbox.bcs import gotypes


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "unexpected end of JSON input"),
        ("{", "unexpected end of JSON input"),
        ('{"a": 1,}', "invalid character '}' looking for beginning of object key string"),
        ("[1,]", "invalid character ']' looking for beginning of value"),
        ('{"a" 1}', "invalid character '1' after object key"),
        ('{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
        ("[1 2]", "invalid character '2' after array element"),
        ("{} x", "invalid character 'x' after top-level value"),
        ("01", "invalid character '1' after top-level value"),
        ("-x", "invalid character 'x' in numeric literal"),
        ("1.e5", "invalid character 'e' after decimal point in numeric literal"),
        ("1e+", "unexpected end of JSON input"),
        ('"\\q"', "invalid character 'q' in string escape code"),
        ('"\\u12g4"', "invalid character 'g' in \\u hexadecimal character escape"),
        ('"a\nb"', "invalid character '\\n' in string literal"),
        ("trux", "invalid character 'x' in literal true (expecting 'e')"),
        ("{'a': 1}", "invalid character '\\'' looking for beginning of object key string"),
    ],
)
def test_syntax_errors_read_like_go(text, message):
    assert gojson.syntax_error(text) == message


def test_valid_json_has_no_syntax_error():
    assert gojson.syntax_error(' {"a": [1, -2.5e3, true, false, null, "\\u00e9\\n"]} ') is None


def test_type_errors_name_the_struct_and_the_field_path():
    _, err = gojson.decode(gojson.loads('{"spec": {"ports": [{"servicePort": "80"}]}}'), gotypes.BcsService)
    assert err == "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.servicePort of type int"
    _, err = gojson.decode(gojson.loads('{"kind": 1}'), gotypes.TypeMeta)
    assert err == "json: cannot unmarshal number into Go struct field TypeMeta.kind of type types.BcsDataType"
    _, err = gojson.decode(gojson.loads("[]"), gotypes.TypeMeta)
    assert err == "json: cannot unmarshal array into Go value of type types.TypeMeta"
    _, err = gojson.decode(gojson.loads('{"spec": {"instance": 2.5}}'), gotypes.BcsDeployment)
    assert err == ("json: cannot unmarshal number 2.5 into Go struct field BcsDeploymentSpec.spec.instance of type int")


def test_decoding_matches_keys_case_insensitively_and_ignores_unknown_ones():
    value, err = gojson.decode(
        gojson.loads('{"KIND": "service", "Extra": 1, "metadata": {"NAME": "x"}}'), gotypes.BcsService
    )
    assert err is None and value["TypeMeta"]["Kind"] == "service" and value["ObjectMeta"]["Name"] == "x"


def test_marshal_follows_go_field_order_and_omitempty():
    service = {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": "s", "labels": {}},
        "spec": {"ports": [{"name": "p", "servicePort": 80, "containerPort": 8000}]},
    }
    value, err = gojson.decode(gojson.loads(json.dumps(service)), gotypes.BcsService)
    assert err is None
    assert json.dumps(gojson.encode(value, gotypes.BcsService)) == json.dumps(
        {
            "apiVersion": "v4",
            "kind": "service",
            "metadata": {"name": "s", "namespace": "", "creationTimestamp": "0001-01-01T00:00:00Z"},
            "spec": {
                "selector": None,
                "clusterIP": None,
                "ports": [{"name": "p", "path": "", "protocol": "", "servicePort": 80}],
            },
        }
    )
