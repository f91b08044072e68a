"""The local gateway builds the events AWS builds, and reads responses the way AWS reads them."""

from __future__ import annotations

import base64

from maas.local.events import http_api_event, http_response, payload_size


def test_a_json_request_becomes_a_payload_2_event() -> None:
    event = http_api_event(
        method="POST",
        target="/v2/models/caf%C3%A9/infer?trace=1",
        headers={"Content-Type": "application/json", "Host": "127.0.0.1:8080"},
        body=b'{"inputs": []}',
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/v2/models/café/infer"
    assert event["rawQueryString"] == "trace=1"
    assert event["queryStringParameters"] == {"trace": "1"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["body"] == '{"inputs": []}'
    assert event["isBase64Encoded"] is False


def test_a_binary_body_arrives_base64_encoded() -> None:
    event = http_api_event(
        method="POST",
        target="/v2/models/m/infer",
        headers={"Content-Type": "application/octet-stream"},
        body=b"\x00\xff",
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"


def test_proxy_responses_are_decoded() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "x/y"},
            "body": base64.b64encode(b"\x01").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (response.status, response.headers, response.body) == (201, {"content-type": "x/y"}, b"\x01")


def test_a_bare_return_value_is_a_json_200_as_payload_2_allows() -> None:
    response = http_response({"ok": True})
    assert response.status == 200
    assert response.body == b'{"ok": true}'


def test_the_event_size_counts_a_binary_body_as_lambda_receives_it_base64_encoded() -> None:
    body = b"\x00" * 3_000_000
    event = http_api_event(
        method="POST",
        target="/v2/models/m/infer",
        headers={"Content-Type": "application/octet-stream"},
        body=body,
    )
    assert 4_000_000 < payload_size(event) < 4_000_000 + 2_000


def test_the_event_size_counts_a_text_body_escaped_as_it_is_in_the_event() -> None:
    body = ('"' * 1_000_000).encode()
    event = http_api_event(method="POST", target="/", headers={"Content-Type": "text/plain"}, body=body)
    assert 2_000_000 < payload_size(event) < 2_000_000 + 2_000


def test_the_event_size_counts_non_ascii_text_in_utf_8_not_in_escapes() -> None:
    """The most compact JSON is counted, so nothing AWS would take is refused locally."""
    body = ("é" * 1_000_000).encode()
    event = http_api_event(method="POST", target="/", headers={"Content-Type": "text/plain"}, body=body)
    assert 2_000_000 < payload_size(event) < 2_000_000 + 2_000


def test_a_json_body_that_is_not_utf8_reaches_the_function_byte_for_byte() -> None:
    import base64

    from maas.local.events import http_api_event

    body = b'{"inputs": [{"name": "text", "data": ["\xff\xfe"]}]}'
    event = http_api_event(
        method="POST", target="/v2/models/x/infer", headers={"content-type": "application/json"}, body=body
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
