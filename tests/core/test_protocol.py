"""The MQTT wire protocol: topics, the earlier system's JSON, and what is refused."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
import json
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.arcade_pay.core.protocol import (
    DEFAULT_TOPIC_PREFIX,
    MAX_CREDITS_PER_PULSE,
    MAX_MESSAGE_BYTES,
    TOPIC_ACK,
    TOPIC_COIN_PULSE,
    TOPIC_GAME_OVER,
    TOPIC_STATE,
    TOPIC_STATUS,
    Ack,
    CabinetState,
    CoinPulse,
    GameOver,
    GameState,
    ProtocolError,
    format_timestamp,
    is_valid_machine_id,
    is_valid_topic_prefix,
    machine_id_from_topic,
    parse_status,
    subscription,
    topic,
)

type Parser = Callable[[Any], Any]

MACHINE_ID = "arcadeCabinet-123"
NOON = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
EARLIER_COIN_PULSE = (
    '{"machineId":"arcadeCabinet-123","credits":1,"timestamp":"2024-07-01T12:00:00Z","paymentId":"cs_test_1"}'
)
OLDER_GAME_OVER = '{"machineId":"arcadeCabinet-123","status":"game_over","timestamp":"2024-07-01T12:00:00Z"}'

JSON_PARSERS: list[Parser] = [
    CoinPulse.from_payload,
    GameOver.from_payload,
    CabinetState.from_payload,
    Ack.from_payload,
]
PARSERS: list[Parser] = [*JSON_PARSERS, parse_status]


def _not_refused(parsers: list[Parser], payload: object) -> list[str]:
    """The parsers that do not raise ProtocolError for ``payload`` (any other error propagates)."""
    accepted = []
    for parse in parsers:
        try:
            parse(payload)
        except ProtocolError:
            continue
        accepted.append(parse.__qualname__)
    return accepted


machine_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
whole_second_utc = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2199, 12, 31, 23, 59, 59), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


def _json(**fields: object) -> str:
    return json.dumps(fields)


# --- topics -------------------------------------------------------------------------


def test_topic_names_are_the_earlier_systems() -> None:
    assert DEFAULT_TOPIC_PREFIX == "arcade/machine"
    assert (TOPIC_COIN_PULSE, TOPIC_GAME_OVER, TOPIC_STATUS, TOPIC_STATE, TOPIC_ACK) == (
        "coinpulse",
        "gameover",
        "status",
        "state",
        "ack",
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (TOPIC_COIN_PULSE, "arcade/machine/arcadeCabinet-123/coinpulse"),
        (TOPIC_GAME_OVER, "arcade/machine/arcadeCabinet-123/gameover"),
        (TOPIC_STATUS, "arcade/machine/arcadeCabinet-123/status"),
        (TOPIC_STATE, "arcade/machine/arcadeCabinet-123/state"),
        (TOPIC_ACK, "arcade/machine/arcadeCabinet-123/ack"),
    ],
)
def test_topic(kind: str, expected: str) -> None:
    assert topic(DEFAULT_TOPIC_PREFIX, MACHINE_ID, kind) == expected


def test_topic_under_a_multi_level_prefix() -> None:
    assert topic("venue-1/arcade", "pacman_2", TOPIC_STATE) == "venue-1/arcade/pacman_2/state"


@pytest.mark.parametrize(
    ("prefix", "kind", "expected"),
    [
        ("arcade/machine", TOPIC_GAME_OVER, "arcade/machine/+/gameover"),
        ("arcade/machine", TOPIC_STATUS, "arcade/machine/+/status"),
        ("venue-1/arcade", TOPIC_STATE, "venue-1/arcade/+/state"),
    ],
)
def test_subscription(prefix: str, kind: str, expected: str) -> None:
    assert subscription(prefix, kind) == expected


MACHINE_ID_FROM_TOPIC = {
    "arcade/machine/arcadeCabinet-123/gameover": MACHINE_ID,
    "arcade/machine/pacman_2/status": "pacman_2",
    "arcade/machine/X/state": "X",
    # Not under the prefix, or under a topic that merely starts like it.
    "other/machine/arcadeCabinet-123/gameover": None,
    "arcade/machines/arcadeCabinet-123/gameover": None,
    "arcade/machine": None,
    "arcade/machine/": None,
    # Wrong number of levels after the prefix.
    "arcade/machine/gameover": None,
    "arcade/machine/arcadeCabinet-123": None,
    "arcade/machine/arcadeCabinet-123/gameover/extra": None,
    "arcade/machine/area/arcadeCabinet-123/gameover": None,
    # A machine id level that is not a valid machine id.
    "arcade/machine//gameover": None,
    "arcade/machine/bad id/gameover": None,
    "arcade/machine/bad.id/gameover": None,
    "arcade/machine/+/gameover": None,
}


def test_machine_id_from_topic() -> None:
    assert {
        message_topic: machine_id_from_topic(DEFAULT_TOPIC_PREFIX, message_topic)
        for message_topic in MACHINE_ID_FROM_TOPIC
    } == MACHINE_ID_FROM_TOPIC


def test_machine_id_from_topic_multi_level_prefix() -> None:
    assert machine_id_from_topic("venue-1/arcade", "venue-1/arcade/cab7/status") == "cab7"
    assert machine_id_from_topic("venue-1/arcade", "venue-2/arcade/cab7/status") is None
    assert machine_id_from_topic("venue-1/arcade", "arcade/machine/cab7/status") is None


@settings(max_examples=100)
@given(
    prefix=st.lists(st.from_regex(r"[a-z0-9_-]{1,10}", fullmatch=True), min_size=1, max_size=4).map("/".join),
    machine_id=machine_ids,
    kind=st.sampled_from([TOPIC_COIN_PULSE, TOPIC_GAME_OVER, TOPIC_STATUS, TOPIC_STATE]),
)
def test_machine_id_from_topic_inverts_topic(prefix: str, machine_id: str, kind: str) -> None:
    assert is_valid_topic_prefix(prefix)
    assert machine_id_from_topic(prefix, topic(prefix, machine_id, kind)) == machine_id


# --- machine ids and topic prefixes ---------------------------------------------------


VALID_MACHINE_IDS = [MACHINE_ID, "a", "0", "A_b-9", "pacman_2", "x" * 64, "-", "_"]
INVALID_MACHINE_IDS = [
    "",
    "x" * 65,
    "a/b",
    "a+b",
    "+",
    "#",
    "a#",
    "$SYS",
    "a b",
    " a",
    "a.b",
    "café",
    "abc\n",
    "\nabc",
    "a\x00b",
]


def test_is_valid_machine_id() -> None:
    expected = dict.fromkeys(VALID_MACHINE_IDS, True) | dict.fromkeys(INVALID_MACHINE_IDS, False)
    assert {machine_id: is_valid_machine_id(machine_id) for machine_id in expected} == expected


VALID_PREFIXES = ["arcade/machine", "arcade", "venue-1/arcade/machine", "a" * 200, "a b/c", "arcade/$x"]
INVALID_PREFIXES = [
    "",  # empty
    "a" * 201,  # too long
    "$SYS/arcade",  # broker topics
    "$arcade",
    "arcade/+",  # wildcards
    "arcade/+/machine",
    "arc+ade",
    "arcade/#",
    "#",
    "arcade//machine",  # empty levels
    "/arcade",
    "arcade/",
    "/",
    "arc\x00ade",  # NUL
]


def test_is_valid_topic_prefix() -> None:
    expected = dict.fromkeys(VALID_PREFIXES, True) | dict.fromkeys(INVALID_PREFIXES, False)
    assert {prefix: is_valid_topic_prefix(prefix) for prefix in expected} == expected


# --- timestamps -------------------------------------------------------------------------


def test_format_timestamp() -> None:
    moments = {
        NOON: "2024-07-01T12:00:00Z",
        datetime(2024, 7, 1, 12, 0, 0, 999_999, tzinfo=UTC): "2024-07-01T12:00:00Z",
        datetime(2024, 7, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=2))): "2024-07-01T12:30:05Z",
        datetime(2024, 12, 31, 20, 0, 0, tzinfo=timezone(timedelta(hours=-5))): "2025-01-01T01:00:00Z",
        datetime(2024, 2, 29, 0, 0, 1, tzinfo=UTC): "2024-02-29T00:00:01Z",
    }
    assert [format_timestamp(moment) for moment in moments] == list(moments.values())


# --- coin pulse ---------------------------------------------------------------------------


def test_coin_pulse_to_json_is_the_earlier_wire_format() -> None:
    pulse = CoinPulse(MACHINE_ID, 1, NOON, "cs_test_1")
    assert pulse.to_json() == EARLIER_COIN_PULSE


def test_coin_pulse_to_json_without_payment_id() -> None:
    pulse = CoinPulse(MACHINE_ID, 3, datetime(2024, 7, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))))
    assert (
        pulse.to_json() == '{"machineId":"arcadeCabinet-123","credits":3,"timestamp":"2024-07-01T12:00:00Z"}'
    )


@pytest.mark.parametrize(
    "payload",
    [EARLIER_COIN_PULSE, EARLIER_COIN_PULSE.encode(), bytearray(EARLIER_COIN_PULSE.encode())],
    ids=["str", "bytes", "bytearray"],
)
def test_coin_pulse_from_payload(payload: str | bytes | bytearray) -> None:
    pulse = CoinPulse.from_payload(payload)
    assert pulse == CoinPulse(MACHINE_ID, 1, NOON, "cs_test_1")
    assert pulse.timestamp.utcoffset() == timedelta(0)


def test_coin_pulse_from_payload_without_payment_id_and_with_extra_fields() -> None:
    payload = _json(machineId="cab7", credits=1000, timestamp="2024-07-01T12:00:00Z", firmware="1.2")
    assert CoinPulse.from_payload(payload) == CoinPulse("cab7", MAX_CREDITS_PER_PULSE, NOON, None)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"credits": 0}, id="zero-credits"),
        pytest.param({"credits": -1}, id="negative-credits"),
        pytest.param({"credits": MAX_CREDITS_PER_PULSE + 1}, id="too-many-credits"),
        pytest.param({"credits": True}, id="bool-credits"),
        pytest.param({"credits": 1.0}, id="float-credits"),
        pytest.param({"credits": "1"}, id="string-credits"),
        pytest.param({"credits": None}, id="null-credits"),
        pytest.param({"machineId": "bad id"}, id="bad-machine-id"),
        pytest.param({"machineId": "a/b"}, id="slash-machine-id"),
        pytest.param({"machineId": ""}, id="empty-machine-id"),
        pytest.param({"machineId": 123}, id="int-machine-id"),
        pytest.param({"timestamp": "yesterday"}, id="bad-timestamp"),
        pytest.param({"timestamp": 1719835200}, id="int-timestamp"),
        pytest.param({"paymentId": ""}, id="empty-payment-id"),
        pytest.param({"paymentId": "x" * 256}, id="long-payment-id"),
        pytest.param({"paymentId": 5}, id="int-payment-id"),
    ],
)
def test_coin_pulse_invalid_fields(fields: dict[str, object]) -> None:
    message = {"machineId": MACHINE_ID, "credits": 1, "timestamp": "2024-07-01T12:00:00Z"} | fields
    with pytest.raises(ProtocolError):
        CoinPulse.from_payload(json.dumps(message))


@pytest.mark.parametrize("missing", ["machineId", "credits", "timestamp"])
def test_coin_pulse_missing_field(missing: str) -> None:
    message = {"machineId": MACHINE_ID, "credits": 1, "timestamp": "2024-07-01T12:00:00Z"}
    del message[missing]
    with pytest.raises(ProtocolError):
        CoinPulse.from_payload(json.dumps(message))


def test_coin_pulse_payment_id_of_255_characters_is_accepted() -> None:
    payment_id = "cs_" + "x" * 252
    payload = _json(machineId=MACHINE_ID, credits=2, timestamp="2024-07-01T12:00:00Z", paymentId=payment_id)
    assert CoinPulse.from_payload(payload).payment_id == payment_id


@settings(max_examples=200)
@given(
    machine_id=machine_ids,
    credits=st.integers(min_value=1, max_value=MAX_CREDITS_PER_PULSE),
    moment=whole_second_utc,
    payment_id=st.none() | st.text(min_size=1, max_size=255),
)
def test_coin_pulse_round_trip(
    machine_id: str, credits: int, moment: datetime, payment_id: str | None
) -> None:
    wire = CoinPulse(machine_id, credits, moment, payment_id).to_json()
    parsed = CoinPulse.from_payload(wire.encode())
    assert parsed.machine_id == machine_id
    assert parsed.credits == credits
    assert parsed.timestamp == moment
    assert parsed.timestamp.utcoffset() == timedelta(0)
    assert parsed.payment_id == payment_id


@settings(max_examples=100)
@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2199, 12, 30)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_coin_pulse_round_trip_any_offset(moment: datetime, offset_minutes: int) -> None:
    """Whatever the zone of the timestamp, the wire carries the same instant in UTC, to the second."""
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    parsed = CoinPulse.from_payload(CoinPulse(MACHINE_ID, 1, aware).to_json())
    assert parsed.timestamp == aware.replace(microsecond=0)
    assert parsed.timestamp.utcoffset() == timedelta(0)


# --- game over ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [OLDER_GAME_OVER, OLDER_GAME_OVER.encode(), bytearray(OLDER_GAME_OVER.encode())]
)
def test_game_over_from_payload(payload: str | bytes | bytearray) -> None:
    game_over = GameOver.from_payload(payload)
    assert game_over == GameOver(MACHINE_ID, NOON)
    assert game_over.timestamp is not None
    assert game_over.timestamp.utcoffset() == timedelta(0)


def test_game_over_without_timestamp_is_tolerated() -> None:
    assert GameOver.from_payload('{"machineId":"arcadeCabinet-123","status":"game_over"}') == GameOver(
        MACHINE_ID, None
    )


def test_game_over_naive_timestamp_is_utc() -> None:
    game_over = GameOver.from_payload(
        '{"machineId":"arcadeCabinet-123","status":"game_over","timestamp":"2024-07-01T12:00:00"}'
    )
    assert game_over.timestamp == NOON
    assert game_over.timestamp is not None
    assert game_over.timestamp.utcoffset() == timedelta(0)


def test_game_over_timestamp_with_offset_keeps_the_instant() -> None:
    game_over = GameOver.from_payload(
        '{"machineId":"arcadeCabinet-123","status":"game_over","timestamp":"2024-07-01T14:00:00+02:00"}'
    )
    assert game_over.timestamp == NOON


def test_game_over_ignores_extra_fields() -> None:
    payload = _json(machineId=MACHINE_ID, status="game_over", score=123456, player="AAA")
    assert GameOver.from_payload(payload) == GameOver(MACHINE_ID, None)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"machineId": MACHINE_ID, "status": "playing"}, id="other-status"),
        pytest.param({"machineId": MACHINE_ID, "status": "GAME_OVER"}, id="uppercase-status"),
        pytest.param({"machineId": MACHINE_ID, "status": "gameover"}, id="topic-name-as-status"),
        pytest.param({"machineId": MACHINE_ID, "status": None}, id="null-status"),
        pytest.param({"machineId": MACHINE_ID}, id="missing-status"),
        pytest.param({"status": "game_over"}, id="missing-machine-id"),
        pytest.param({"machineId": "bad id", "status": "game_over"}, id="machine-id-with-space"),
        pytest.param({"machineId": "arcade/+", "status": "game_over"}, id="machine-id-with-wildcard"),
        pytest.param({"machineId": "", "status": "game_over"}, id="empty-machine-id"),
        pytest.param({"machineId": 123, "status": "game_over"}, id="int-machine-id"),
        pytest.param(
            {"machineId": MACHINE_ID, "status": "game_over", "timestamp": "soon"}, id="bad-timestamp"
        ),
        pytest.param({"machineId": MACHINE_ID, "status": "game_over", "timestamp": 1719835200}, id="int-ts"),
    ],
)
def test_game_over_invalid(message: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        GameOver.from_payload(json.dumps(message))


def test_game_over_to_json() -> None:
    assert GameOver(MACHINE_ID, NOON).to_json() == OLDER_GAME_OVER
    assert GameOver(MACHINE_ID, None).to_json() == '{"machineId":"arcadeCabinet-123","status":"game_over"}'


@settings(max_examples=100)
@given(machine_id=machine_ids, moment=st.none() | whole_second_utc)
def test_game_over_round_trip(machine_id: str, moment: datetime | None) -> None:
    assert GameOver.from_payload(GameOver(machine_id, moment).to_json()) == GameOver(machine_id, moment)


# --- cabinet state ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"credits":3,"state":"playing"}', CabinetState(3, GameState.PLAYING)),
        (b'{"credits":0,"state":"attract"}', CabinetState(0, GameState.ATTRACT)),
        (bytearray(b'{"state":"attract","credits":1000000}'), CabinetState(1_000_000, GameState.ATTRACT)),
        ('{"credits":2,"state":"playing","coins":7}', CabinetState(2, GameState.PLAYING)),
        ('{"credits":2,"state":"playing","acknowledges":true}', CabinetState(2, GameState.PLAYING, True)),
        ('{"credits":2,"state":"playing","acknowledges":false}', CabinetState(2, GameState.PLAYING)),
    ],
)
def test_cabinet_state_from_payload(payload: str | bytes | bytearray, expected: CabinetState) -> None:
    state = CabinetState.from_payload(payload)
    assert state == expected
    assert type(state.state) is GameState


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"credits": True, "state": "playing"}, id="bool-credits"),
        pytest.param({"credits": False, "state": "playing"}, id="false-credits"),
        pytest.param({"credits": 2.0, "state": "playing"}, id="float-credits"),
        pytest.param({"credits": 2.5, "state": "playing"}, id="fractional-credits"),
        pytest.param({"credits": "2", "state": "playing"}, id="string-credits"),
        pytest.param({"credits": None, "state": "playing"}, id="null-credits"),
        pytest.param({"credits": -1, "state": "playing"}, id="negative-credits"),
        pytest.param({"credits": 1_000_001, "state": "playing"}, id="too-many-credits"),
        pytest.param({"credits": 2, "state": "paused"}, id="unknown-state"),
        pytest.param({"credits": 2, "state": ""}, id="empty-state"),
        pytest.param({"credits": 2, "state": None}, id="null-state"),
        pytest.param({"credits": 2}, id="missing-state"),
        pytest.param({"state": "playing"}, id="missing-credits"),
        pytest.param({"credits": 2, "state": ["playing"]}, id="list-state"),
        pytest.param({"credits": 2, "state": "playing", "acknowledges": "yes"}, id="string-acknowledges"),
        pytest.param({"credits": 2, "state": "playing", "acknowledges": 1}, id="number-acknowledges"),
        pytest.param({"credits": 2, "state": "playing", "acknowledges": None}, id="null-acknowledges"),
    ],
)
def test_cabinet_state_invalid(message: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        CabinetState.from_payload(json.dumps(message))


def test_cabinet_state_to_json() -> None:
    assert CabinetState(3, GameState.PLAYING).to_json() == '{"credits":3,"state":"playing"}'
    assert CabinetState(0, GameState.ATTRACT).to_json() == '{"credits":0,"state":"attract"}'


@settings(max_examples=100)
@given(credits=st.integers(0, 1_000_000), state=st.sampled_from(GameState), acks=st.booleans())
def test_cabinet_state_round_trip(credits: int, state: GameState, acks: bool) -> None:
    sent = CabinetState(credits, state, acks)
    assert CabinetState.from_payload(sent.to_json()) == sent


# --- acknowledgement ------------------------------------------------------------------------------


def test_ack_to_json() -> None:
    assert Ack("cs_test_1").to_json() == '{"paymentId":"cs_test_1"}'


@pytest.mark.parametrize(
    "payload",
    [
        '{"paymentId":"cs_test_1"}',
        b'{"paymentId": "cs_test_1", "machineId": "arcadeCabinet-123", "credits": 1}',
        bytearray(b'{"paymentId":"cs_test_1"}'),
    ],
)
def test_ack_from_payload(payload: str | bytes | bytearray) -> None:
    assert Ack.from_payload(payload) == Ack("cs_test_1")


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({}, id="missing"),
        pytest.param({"paymentId": ""}, id="empty"),
        pytest.param({"paymentId": "x" * 256}, id="too-long"),
        pytest.param({"paymentId": 5}, id="int"),
        pytest.param({"paymentId": None}, id="null"),
        pytest.param({"payment_id": "cs_test_1"}, id="snake-case"),
    ],
)
def test_ack_invalid(message: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        Ack.from_payload(json.dumps(message))


@settings(max_examples=100)
@given(payment_id=st.text(min_size=1, max_size=255))
def test_ack_round_trip(payment_id: str) -> None:
    assert Ack.from_payload(Ack(payment_id).to_json().encode()) == Ack(payment_id)


# --- status -----------------------------------------------------------------------------------


def test_parse_status() -> None:
    payloads: list[tuple[str | bytes | bytearray, bool]] = [
        ("online", True),
        ("offline", False),
        (b"online", True),
        (b"offline", False),
        (bytearray(b"online"), True),
        (bytearray(b"offline"), False),
        ("Online", True),
        ("OFFLINE", False),
        (" online\n", True),
        (b"\toffline \r\n", False),
    ]
    assert [(payload, parse_status(payload)) for payload, _ in payloads] == payloads


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "   ",
        "on",
        "off",
        "onlin",
        "online offline",
        "on line",
        '"online"',
        "1",
        "true",
        "null",
        '{"status":"online"}',
        b"\xff\xfe",
        b"online\xff",
        "online" + " " * MAX_MESSAGE_BYTES,
    ],
)
def test_parse_status_garbage(payload: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_status(payload)


# --- malformed payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param("online", id="status-text"),
        pytest.param(b'{"machineId":', id="truncated"),
        pytest.param(b"\xff\xfe\x00{", id="binary"),
        pytest.param(b'{"machineId":"\xe9"}', id="latin-1"),
        pytest.param(b"\x80", id="lone-continuation-byte"),
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(bytearray(b"[]"), id="bytearray-array"),
        pytest.param(b'"game_over"', id="json-string"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b"42", id="json-number"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b"[" * MAX_MESSAGE_BYTES, id="unclosed-nesting"),
        pytest.param(b"[" * 2048 + b"]" * 2048, id="deep-nesting"),
    ],
)
def test_malformed_payloads_raise_protocol_error(payload: bytes | bytearray | str) -> None:
    assert _not_refused(JSON_PARSERS, payload) == []


def _padded(message: dict[str, object], size: int) -> bytes:
    """Valid ``message`` plus a padding field, exactly ``size`` bytes of JSON."""
    base = len(json.dumps(message | {"pad": ""}, separators=(",", ":")).encode())
    padded = json.dumps(message | {"pad": "x" * (size - base)}, separators=(",", ":")).encode()
    assert len(padded) == size
    return padded


GAME_OVER_MESSAGE = {"machineId": MACHINE_ID, "status": "game_over"}


@pytest.mark.parametrize("kind", [bytes, bytearray, str])
def test_message_of_exactly_the_maximum_size_is_accepted(kind: type) -> None:
    payload = _padded(GAME_OVER_MESSAGE, MAX_MESSAGE_BYTES)
    arg = payload.decode() if kind is str else kind(payload)
    assert GameOver.from_payload(arg) == GameOver(MACHINE_ID, None)


@pytest.mark.parametrize("kind", [bytes, bytearray, str])
def test_message_over_the_maximum_size_is_refused(kind: type) -> None:
    payload = _padded(GAME_OVER_MESSAGE, MAX_MESSAGE_BYTES + 1)
    arg = payload.decode() if kind is str else kind(payload)
    assert _not_refused(JSON_PARSERS, arg) == []


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    # 2 100 characters of "é" are 4 200 bytes: under the limit in characters, over it in bytes.
    message = GAME_OVER_MESSAGE | {"player": "é" * 2100}
    text = json.dumps(message, ensure_ascii=False)
    assert len(text) < MAX_MESSAGE_BYTES < len(text.encode())
    with pytest.raises(ProtocolError):
        GameOver.from_payload(text)


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=600) | st.text(max_size=300) | st.binary(max_size=600).map(bytearray))
def test_arbitrary_payloads_only_ever_raise_protocol_error(payload: bytes | bytearray | str) -> None:
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    for parse in JSON_PARSERS:
        try:
            parse(payload)
        except ProtocolError:
            continue
        # Only a JSON object can ever be accepted.
        assert raw.strip().startswith(b"{")
    try:
        online = parse_status(payload)
    except ProtocolError:
        assert raw.decode(errors="replace").strip().lower() not in {"online", "offline"}
    else:
        assert raw.decode().strip().lower() == ("online" if online else "offline")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from([MACHINE_ID, "game_over", "playing", "attract", "2024-07-01T12:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["machineId", "credits", "timestamp", "paymentId", "status", "state"])
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_arbitrary_json_only_ever_raises_protocol_error(value: object) -> None:
    payload = json.dumps(value).encode()
    for parse in JSON_PARSERS:
        try:
            result = parse(payload)
        except ProtocolError:
            continue
        # Whatever is accepted has the types the rest of the integration relies on.
        assert isinstance(value, dict)
        if isinstance(result, Ack):
            assert result.payment_id == value["paymentId"]
            assert isinstance(result.payment_id, str)
            assert 1 <= len(result.payment_id) <= 255
        elif isinstance(result, CabinetState):
            assert type(result.credits) is int
            assert 0 <= result.credits <= 1_000_000
            assert result.state in {GameState.ATTRACT, GameState.PLAYING}
        else:
            assert is_valid_machine_id(result.machine_id)
            assert result.machine_id == value["machineId"]
        if isinstance(result, CoinPulse):
            assert type(result.credits) is int
            assert 1 <= result.credits <= MAX_CREDITS_PER_PULSE
            assert result.timestamp.tzinfo is not None
        if isinstance(result, GameOver):
            assert value["status"] == "game_over"


@pytest.mark.parametrize("payload", ['{"machineId":"\ud800"}', "online\udcff", "\udfff"])
def test_str_payload_with_lone_surrogate_raises_protocol_error(payload: str) -> None:
    """A str that cannot be encoded as UTF-8 is a ProtocolError, not a UnicodeEncodeError."""
    assert _not_refused(PARSERS, payload) == []
