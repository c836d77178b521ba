"""Property-based fuzzing of the room endpoints against the spec's OpenAPI: never a 5xx.

Uses schemathesis (installed into /work/venv for this test) to generate requests from
/work/shared/spec/openapi/client-server.json, limited to the room paths, with a valid
access token. Half the cases have their roomId/eventId replaced by a real room and
event so that the fuzzing reaches past ID validation into the handlers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import q
from tests.support.rooms import create_room, new_user, send_message
from tests.support.server import RunningServer

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SPEC = Path(os.environ.get("VIGNETTE_SPEC_DIR", "/work/shared/spec")) / "openapi" / "client-server.json"
EXAMPLES_PER_OPERATION = 20

ROOM_PATHS = re.compile(
    r"^/_matrix/client/(?:"
    r"v1/rooms/\{roomId\}/(?:relations/.*|threads)"
    r"|v3/(?:createRoom|directory/room/\{roomAlias\}|directory/list/room/\{roomId\}"
    r"|join/\{roomIdOrAlias\}|joined_rooms|knock/\{roomIdOrAlias\}|publicRooms"
    r"|rooms/\{roomId\}/(?:aliases|ban|context/\{eventId\}|event/\{eventId\}|forget|invite|join"
    r"|joined_members|kick|leave|members|messages|redact/\{eventId\}/\{txnId\}"
    r"|send/\{eventType\}/\{txnId\}|state|state/\{eventType\}/\{stateKey\}|unban))"
    r")$"
)


def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_path(str(SPEC))
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if ROOM_PATHS.match(operation.path):
            operations.append(operation)
    return operations


@pytest.mark.skipif(not SPEC.exists(), reason="the Matrix OpenAPI spec is not available")
def test_room_endpoints_never_answer_5xx(server: RunningServer) -> None:
    user = new_user(server.base_url)
    room_id = create_room(user, preset="public_chat", room_alias_name=f"fuzz{user.user_id[5:13]}")
    event_id = send_message(user, room_id, "fuzz target")
    real = {"roomId": room_id, "roomIdOrAlias": room_id, "eventId": event_id}
    headers = {"Authorization": f"Bearer {user.access_token}"}
    operations = _operations()
    assert len(operations) >= 25, [op.path for op in operations]
    server_errors: list[str] = []

    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), use_real_ids=st.booleans())
        def exercise(case: Any, use_real_ids: bool) -> None:
            if use_real_ids and case.path_parameters:
                # Earlier cases may have made the user leave; come back so sends get through.
                user.post(f"/_matrix/client/v3/rooms/{q(room_id)}/join", {})
                for name, value in real.items():
                    if name in case.path_parameters:
                        case.path_parameters[name] = value
            response = case.call(base_url=server.base_url, headers=headers, timeout=30)
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                     f"{response.text[:200]}")

        exercise()

    assert not server_errors, "\n".join(server_errors[:20]) + "\n" + server.output()[-3000:]

