"""OCPP-J framing: what a malformed frame gets back on the wire, for every version."""

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csms_ocpp import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    ErrorCode,
    Frame,
    FrameError,
    OcppVersion,
    Send,
    encode,
    parse_frame,
)

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
ALL_VERSIONS = tuple(OcppVersion)

# 1.6 has neither RpcFrameworkError nor MessageTypeNotSupported: it answers FormationViolation.
RPC_ERROR = {V16: "FormationViolation", V201: "RpcFrameworkError", V21: "RpcFrameworkError"}
FORMAT_ERROR = {V16: "FormationViolation", V201: "FormatViolation", V21: "FormatViolation"}
TYPE_NOT_SUPPORTED = {
    V16: "FormationViolation",
    V201: "MessageTypeNotSupported",
    V21: "MessageTypeNotSupported",
}
NOT_AN_ARRAY = "Frame is not a JSON array of at least 3 elements"
BAD_MESSAGE_ID = "messageId must be a string of 1 to 36 characters"
BAD_CALL = "CALL must be [2, id, action, {payload}]"

# (raw frame, messageId answered, codes by version, description)
MALFORMED_CALLS: list[tuple[bytes, str, dict[OcppVersion, str], str]] = [
    (b'{"messageTypeId":2}', "-1", RPC_ERROR, NOT_AN_ARRAY),
    (b'"text"', "-1", RPC_ERROR, NOT_AN_ARRAY),
    (b"[]", "-1", RPC_ERROR, NOT_AN_ARRAY),
    (b'[2,"m1"]', "-1", RPC_ERROR, NOT_AN_ARRAY),
    (b'[2,17,"Heartbeat",{}]', "-1", RPC_ERROR, BAD_MESSAGE_ID),
    (b'[2,null,"Heartbeat",{}]', "-1", RPC_ERROR, BAD_MESSAGE_ID),
    (b'[2,"","Heartbeat",{}]', "-1", RPC_ERROR, BAD_MESSAGE_ID),
    (b'[2,"' + b"x" * 37 + b'","Heartbeat",{}]', "-1", RPC_ERROR, BAD_MESSAGE_ID),
    (b'["2","m1","Heartbeat",{}]', "m1", RPC_ERROR, "messageTypeId must be a number"),
    (b'[true,"m1","Heartbeat",{}]', "m1", RPC_ERROR, "messageTypeId must be a number"),
    (b'[2.0,"m1","Heartbeat",{}]', "m1", RPC_ERROR, "messageTypeId must be a number"),
    (b'[2,"m1","Heartbeat"]', "m1", RPC_ERROR, BAD_CALL),
    (b'[2,"m1","Heartbeat",{},{}]', "m1", RPC_ERROR, BAD_CALL),
    (b'[2,"m1","",{}]', "m1", RPC_ERROR, "action must be a non-empty string"),
    (b'[2,"m1",42,{}]', "m1", RPC_ERROR, "action must be a non-empty string"),
    (b'[2,"m1","Heartbeat",[]]', "m1", FORMAT_ERROR, "payload must be a JSON object"),
    (b'[2,"m1","Heartbeat",null]', "m1", FORMAT_ERROR, "payload must be a JSON object"),
]


def wire_answer(raw: bytes | str, version: OcppVersion) -> list[Any]:
    """The CALLERROR the CSMS sends back for ``raw``, as the station decodes it."""
    result = parse_frame(raw, version)
    assert isinstance(result, FrameError), result
    answer: list[Any] = orjson.loads(encode(result.to_call_error(version)))
    return answer


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("raw", [b"not json", b"[2,", "[2, 'm1']", b"\xff\xfe", b""])
def test_invalid_json_is_answered_with_id_minus_one(raw: bytes | str, version: OcppVersion) -> None:
    answer = wire_answer(raw, version)

    assert answer[:4] == [4, "-1", RPC_ERROR[version], "Frame is not valid JSON"]
    assert list(answer[4]) == ["cause"]


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize(("raw", "message_id", "codes", "description"), MALFORMED_CALLS)
def test_malformed_call_gets_the_exact_callerror(
    raw: bytes,
    message_id: str,
    codes: dict[OcppVersion, str],
    description: str,
    version: OcppVersion,
) -> None:
    assert wire_answer(raw, version) == [4, message_id, codes[version], description, {}]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_unknown_message_type_is_not_supported(version: OcppVersion) -> None:
    assert wire_answer(b'[7,"m1","Heartbeat",{}]', version) == [
        4,
        "m1",
        TYPE_NOT_SUPPORTED[version],
        f"Message type 7 is not supported in OCPP {version.number}",
        {},
    ]


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize(
    ("raw", "message_type"),
    [(b'[5,"m1","InternalError","boom",{}]', 5), (b'[6,"m1","NotifyPeriodicEventStream",{}]', 6)],
)
def test_types_5_and_6_exist_only_in_2_1(
    raw: bytes, message_type: int, version: OcppVersion
) -> None:
    assert wire_answer(raw, version) == [
        4,
        "m1",
        TYPE_NOT_SUPPORTED[version],
        f"Message type {message_type} is not supported in OCPP {version.number}",
        {},
    ]


def test_2_1_accepts_send_and_callresulterror() -> None:
    assert parse_frame(b'[6,"m1","NotifyPeriodicEventStream",{"id":1}]', V21) == Send(
        "m1", "NotifyPeriodicEventStream", {"id": 1}
    )
    assert parse_frame(b'[5,"m1","InternalError","boom",{"x":1}]', V21) == CallResultError(
        "m1", "InternalError", "boom", {"x": 1}
    )


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize(
    ("raw", "description"),
    [
        (b'[3,"m1",[]]', "CALLRESULT must be [3, id, {payload}]"),
        (b'[3,"m1",{},{}]', "CALLRESULT must be [3, id, {payload}]"),
        (b'[4,"m1",500,"",{}]', "CALLERROR must be [4, id, code, description, {details}]"),
        (
            b'[4,"m1","GenericError",7,{}]',
            "CALLERROR must be [4, id, code, description, {details}]",
        ),
        (
            b'[4,"m1","GenericError","",[]]',
            "CALLERROR must be [4, id, code, description, {details}]",
        ),
        (
            b'[4,"m1","GenericError","",{},1]',
            "CALLERROR must be [4, id, code, description, {details}]",
        ),
    ],
)
def test_malformed_answers_are_protocol_errors_never_answered(
    raw: bytes, description: str, version: OcppVersion
) -> None:
    # OCPP 2.0.1 Part 4 §4.2.3: a CALLRESULT or CALLERROR is never answered.
    assert parse_frame(raw, version) == FrameError(
        "m1", ErrorCode.PROTOCOL_ERROR, description, answerable=False
    )


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize(
    ("raw", "frame"),
    [
        (b'[2,"m1","Heartbeat",{}]', Call("m1", "Heartbeat", {})),
        (b'[2,"' + b"x" * 36 + b'","Heartbeat",{}]', Call("x" * 36, "Heartbeat", {})),
        (
            b'[3,"m1",{"currentTime":"2024-01-01T00:00:00Z"}]',
            CallResult("m1", {"currentTime": "2024-01-01T00:00:00Z"}),
        ),
        (
            b'[4,"m1","NotImplemented","no",{"a":1}]',
            CallError("m1", "NotImplemented", "no", {"a": 1}),
        ),
        (b'[4,"m1","NotImplemented"]', CallError("m1", "NotImplemented", "", {})),
        (b'[4,"m1","NotImplemented","no"]', CallError("m1", "NotImplemented", "no", {})),
    ],
)
def test_valid_frames_parse(raw: bytes, frame: Frame, version: OcppVersion) -> None:
    assert parse_frame(raw, version) == frame
    assert parse_frame(raw.decode(), version) == frame


def test_encode_writes_compact_json_arrays() -> None:
    assert encode(Call("m1", "Heartbeat", {})) == b'[2,"m1","Heartbeat",{}]'
    assert encode(CallResult("m1", {"a": 1})) == b'[3,"m1",{"a":1}]'
    assert encode(CallError("m1", "GenericError")) == b'[4,"m1","GenericError","",{}]'
    assert encode(Send("m1", "A", {})) == b'[6,"m1","A",{}]'
    assert encode(CallResultError("m1", "GenericError", "d")) == b'[5,"m1","GenericError","d",{}]'


# --- properties -------------------------------------------------------------------------------
# Each property checks every version on the same example, which keeps the suite fast.

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)
# Arrays shaped like frames reach the deeper checks more often than arbitrary JSON does.
FRAME_LIKE = st.builds(
    lambda message_type, message_id, rest: [message_type, message_id, *rest],
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, -1, 2**40, "2", None]),
    st.text(max_size=40) | JSON_SCALARS,
    st.lists(JSON_VALUES, max_size=4),
)
MESSAGE_IDS = st.text(min_size=1, max_size=36)
ACTIONS = st.text(min_size=1, max_size=30)
PROPERTY_SETTINGS = settings(max_examples=60)


def assert_parses_to_a_value(raw: bytes | str) -> None:
    """Every version returns a frame or a CALLERROR that can be sent; nothing raises."""
    for version in ALL_VERSIONS:
        result = parse_frame(raw, version)
        if isinstance(result, FrameError):
            answer = orjson.loads(encode(result.to_call_error(version)))
            assert answer[0] == 4
            assert 0 < len(answer[1]) <= 36
        else:
            assert isinstance(result, Call | Send | CallResult | CallError | CallResultError)


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=100) | st.text(max_size=100))
def test_parse_frame_never_raises_on_arbitrary_input(raw: bytes | str) -> None:
    assert_parses_to_a_value(raw)


@PROPERTY_SETTINGS
@given(value=JSON_VALUES | FRAME_LIKE)
def test_parse_frame_never_raises_on_arbitrary_json(value: Any) -> None:
    assert_parses_to_a_value(orjson.dumps(value))


FRAMES_EVERY_VERSION = st.one_of(
    st.builds(Call, MESSAGE_IDS, ACTIONS, JSON_OBJECTS),
    st.builds(CallResult, MESSAGE_IDS, JSON_OBJECTS),
    st.builds(CallError, MESSAGE_IDS, st.text(max_size=30), st.text(max_size=30), JSON_OBJECTS),
)
FRAMES_ONLY_2_1 = st.one_of(
    st.builds(Send, MESSAGE_IDS, ACTIONS, JSON_OBJECTS),
    st.builds(
        CallResultError, MESSAGE_IDS, st.text(max_size=30), st.text(max_size=30), JSON_OBJECTS
    ),
)


@PROPERTY_SETTINGS
@given(frame=FRAMES_EVERY_VERSION)
def test_encode_then_parse_round_trips(frame: Frame) -> None:
    for version in ALL_VERSIONS:
        assert parse_frame(encode(frame), version) == frame


@PROPERTY_SETTINGS
@given(frame=FRAMES_ONLY_2_1)
def test_send_and_callresulterror_round_trip_in_2_1(frame: Frame) -> None:
    assert parse_frame(encode(frame), V21) == frame
