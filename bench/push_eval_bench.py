"""Push-rule evaluation in-process: one plain message for N default-rule members, per-user
``first_match`` against the shared path (homeserver/handlers/push/shared.py), CPU time per
recipient. A script, not a test: ``python bench/push_eval_bench.py``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homeserver.handlers.push.conditions import EventFacts, compile_rules, first_match, flatten  # noqa: E402
from homeserver.handlers.push.ruleset import Ruleset  # noqa: E402
from homeserver.handlers.push.shared import DefaultTemplate, SharedPlan  # noqa: E402

EVENT = {"event_id": "$e", "sender": "@s:hs", "room_id": "!r", "type": "m.room.message",
         "content": {"msgtype": "m.text", "body": "hello everyone, how are you"}}


def facts(members: int) -> EventFacts:
    return EventFacts(flatten(EVENT), "@s:hs", "!r", members, {}, has_mentions=False)


def measure(members: int) -> None:
    users = [f"@user{i}:hs" for i in range(members)]
    rules = {u: compile_rules(Ruleset.empty(u).render()) for u in users}
    names = {u: f"User {i}" for i, u in enumerate(users)}
    template = DefaultTemplate.build("hs")
    reps = max(1, 20000 // members)
    start = time.process_time()
    for _ in range(reps):
        shared = facts(members)
        for user in users:
            first_match(rules[user], shared, names[user])
    middle = time.process_time()
    for _ in range(reps):
        shared = facts(members)
        plan = SharedPlan.for_event(template, shared)
        for user in users:
            plan.match(template, rules[user], shared, names[user])
    end = time.process_time()
    per_user, per_plan = (middle - start) / reps, (end - middle) / reps
    print(f"{members} members: per-user {1e6 * per_user / members:.2f} us/recipient, "
          f"shared {1e6 * per_plan / members:.2f} us/recipient; "
          f"per event {1e3 * per_user:.3f} ms vs {1e3 * per_plan:.3f} ms")


if __name__ == "__main__":
    for count in (19, 1500):
        measure(count)
