"""A cabinet's announcement (``<prefix>/<id>/info``): what is read, written and refused."""

import json
from typing import Any

import pytest

from custom_components.arcade_pay.core.announcement import MAX_LABEL_LENGTH, Announcement
from custom_components.arcade_pay.core.protocol import (
    MAX_MESSAGE_BYTES,
    TOPIC_INFO,
    ProtocolError,
    machine_id_from_topic,
    subscription,
    topic,
)

FULL = {
    "machineId": "arcadeCabinet-123",
    "name": "Galaga",
    "model": "Arcade Pay cabinet agent",
    "swVersion": "0.2.0",
    "acknowledges": True,
}


def test_the_info_topic_is_under_the_prefix_like_the_others() -> None:
    assert topic("arcade/machine", "cab-1", TOPIC_INFO) == "arcade/machine/cab-1/info"
    assert subscription("arcade/machine", TOPIC_INFO) == "arcade/machine/+/info"
    assert machine_id_from_topic("arcade/machine", "arcade/machine/cab-1/info") == "cab-1"


def test_a_full_announcement_is_parsed() -> None:
    assert Announcement.from_payload(json.dumps(FULL).encode(), "arcadeCabinet-123") == Announcement(
        "arcadeCabinet-123", "Galaga", "Arcade Pay cabinet agent", "0.2.0", acknowledges=True
    )


def test_serializing_and_parsing_give_the_same_announcement() -> None:
    for announcement in (
        Announcement("cab-1", "Pac-Man", "ESPHome", "2025.4.0", acknowledges=True),
        Announcement("cab-1", "Pac-Man"),
    ):
        assert Announcement.from_payload(announcement.to_json(), "cab-1") == announcement


def test_the_json_uses_the_documented_keys() -> None:
    assert json.loads(Announcement(**_fields(FULL)).to_json()) == FULL
    # What a cabinet does not say is left out rather than sent as null.
    assert json.loads(Announcement("cab-1", "Pac-Man").to_json()) == {"machineId": "cab-1", "name": "Pac-Man"}


def test_model_version_and_acknowledges_may_be_left_out_or_null() -> None:
    parsed = Announcement.from_payload('{"machineId":"cab-1","name":"Pac-Man","model":null}', "cab-1")
    assert (parsed.model, parsed.sw_version, parsed.acknowledges) == (None, None, False)


def test_labels_lose_surrounding_spaces() -> None:
    parsed = Announcement.from_payload('{"machineId":"cab-1","name":"  Pac-Man \\n"}')
    assert parsed.name == "Pac-Man"


def test_an_announcement_for_another_cabinet_is_refused() -> None:
    with pytest.raises(ProtocolError, match="does not match the topic"):
        Announcement.from_payload(json.dumps(FULL), "cab-2")


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"machineId": None}, "machineId"),
        ({"machineId": "a/b"}, "machineId"),
        ({"name": None}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x" * (MAX_LABEL_LENGTH + 1)}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"model": 3}, "model"),
        ({"swVersion": ["1"]}, "swVersion"),
        ({"acknowledges": "yes"}, "acknowledges"),
    ],
)
def test_malformed_announcements_are_refused(change: dict[str, Any], complaint: str) -> None:
    message = {key: value for key, value in (FULL | change).items() if value is not None or key == "name"}
    with pytest.raises(ProtocolError, match=complaint):
        Announcement.from_payload(json.dumps(message))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[1]",
        b"\xff\xfe",
        ('{"machineId":"c","name":"' + "x" * MAX_MESSAGE_BYTES + '"}').encode(),
    ],
)
def test_what_is_no_announcement_at_all_is_refused(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        Announcement.from_payload(payload)


def _fields(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine_id": message["machineId"],
        "name": message["name"],
        "model": message["model"],
        "sw_version": message["swVersion"],
        "acknowledges": message["acknowledges"],
    }
