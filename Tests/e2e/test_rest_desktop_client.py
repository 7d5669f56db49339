"""The desktop client's REST flow (DESIGN, "The desktop client"), decoded the way it decodes:
every object must have exactly the declared fields, or the client fails."""

from dataclasses import dataclass, fields

from helpers import TIMESTAMP_RE, ok_json, unique_username


class StrictDecodeError(AssertionError):
    pass


def decode(cls, obj):
    """Like a Rust serde struct with deny_unknown_fields and no defaults."""
    if not isinstance(obj, dict):
        raise StrictDecodeError(f"{cls.__name__}: expected an object, got {obj!r}")
    declared = {f.name for f in fields(cls)}
    unknown = set(obj) - declared
    missing = declared - set(obj)
    if unknown or missing:
        raise StrictDecodeError(f"{cls.__name__}: unknown fields {sorted(unknown)}, missing {sorted(missing)}")
    return cls(**obj)


@dataclass
class LoginResponse:
    token: str


@dataclass
class UserDto:
    id: int
    username: str
    display_name: "str | None"
    bio: "str | None"
    image_id: "int | None"


@dataclass
class InitiateResponse:
    chat_id: int
    status: str


@dataclass
class ChatDto:
    id: int
    name: "str | None"
    chat_type: str
    created_at: str
    participants: list


@dataclass
class MessageDto:
    id: int
    chat_id: int
    sender_id: int
    content: "str | None"
    timestamp: str
    files: list


@dataclass
class MessagesResponse:
    chat_id: int
    messages: list


def test_desktop_client_flow(api):
    # Two people use the client; the second one exists so the first can find them.
    me_name = unique_username("Desk")
    peer_name = unique_username("Peer")
    token = decode(LoginResponse, ok_json(api.post("/login", json={"username": me_name}))).token
    peer_token = decode(LoginResponse, ok_json(api.post("/login", json={"username": peer_name}))).token

    # Search for the peer by part of the name.
    results = [decode(UserDto, u) for u in ok_json(api.get("/users", token, params={"username": peer_name[2:]}))]
    assert [u.username for u in results] == [peer_name]
    peer = results[0]

    # Fetch the profile by id.
    assert decode(UserDto, ok_json(api.get(f"/users/{peer.id}", token))) == peer

    # Start the chat by id.
    initiated = decode(InitiateResponse, ok_json(api.post("/chats/initiate", token, json={"target_id": peer.id})))
    assert initiated.status == "created"

    # The chat list, with participants, which the client needs to name direct chats.
    chats = [decode(ChatDto, c) for c in ok_json(api.get("/chats", token))]
    assert [c.id for c in chats] == [initiated.chat_id]
    chat = chats[0]
    assert chat.chat_type == "direct"
    assert TIMESTAMP_RE.match(chat.created_at)
    assert peer.id in chat.participants and len(chat.participants) == 2
    me_id = next(p for p in chat.participants if p != peer.id)
    assert decode(UserDto, ok_json(api.get(f"/users/{me_id}", token))).username == me_name

    # The peer writes; the client loads the messages.
    ok_json(api.post(f"/chats/{chat.id}/messages", peer_token, json={"content": "hello desk"}))
    page = decode(MessagesResponse, ok_json(api.get(f"/chats/{chat.id}/messages", token)))
    assert page.chat_id == chat.id
    messages = [decode(MessageDto, m) for m in page.messages]
    assert [(m.sender_id, m.content, m.files) for m in messages] == [(peer.id, "hello desk", [])]
    assert TIMESTAMP_RE.match(messages[0].timestamp)
