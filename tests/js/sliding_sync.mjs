// matrix-js-sdk's SlidingSync class (simplified sliding sync, MSC4186) driven against a Vignette server.
//
// Usage: node sliding_sync.mjs HOMESERVER_URL [--rooms N] [--timeout SECONDS]
//
// One user registers and creates N rooms (named "room 0" .. "room N-1", oldest first). A SlidingSync
// connection holds one list of the 20 most recent rooms (timeline_limit 1, the room name as required
// state). The script then sends a message into the oldest room (which must enter the list) and one into
// a room already in it (which must arrive as an update). The result is one JSON object on stdout with
// everything the SDK handed to its listeners; the test (tests/apps/test_sliding_sync_js.py) judges it.
// Waits are event-driven; the overall timeout only guards against a hang.

import {
    baseUrl, finish, option, randomHex, registerClient, requestObservers, result, startRun,
} from "./lib.mjs";

const { SlidingSync, SlidingSyncEvent, SlidingSyncState } = await import("matrix-js-sdk/lib/sliding-sync.js");

const roomCount = option("--rooms", 100);
const LIST = "recent";
const WINDOW = 20;

Object.assign(result, {
    rooms: [], // room IDs, oldest first
    responses: [], // per sliding sync response: its list count and the rooms it carried
    updates: [], // each RoomData the SDK emitted: room, initial, names and bodies
    sync_paths: [],
});
requestObservers.push((url) => {
    if (url.pathname.endsWith("/sync") && !result.sync_paths.includes(url.pathname)) {
        result.sync_paths.push(url.pathname);
    }
});

startRun("node sliding_sync.mjs HOMESERVER_URL [--rooms N] [--timeout SECONDS]", option("--timeout", 120));

result.step = "register";
const { client } = await registerClient(`js-slider-${randomHex(4)}`, "correct horse battery " + randomHex(4));

result.step = "create rooms";
for (let i = 0; i < roomCount; i++) {
    const { room_id: roomId } = await client.createRoom({ name: `room ${i}`, preset: "private_chat" });
    result.rooms.push(roomId);
}

let txn = 0;
async function sendText(roomId, body) {
    const path = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/js${Date.now()}-${txn++}`;
    const sent = await client.http.authedRequest("PUT", path, undefined, { msgtype: "m.text", body });
    return sent.event_id;
}

const waiters = [];
function waitFor(step, check) {
    result.step = step;
    return new Promise((resolve) => {
        const waiter = () => {
            const value = check();
            if (value) resolve(value);
            return Boolean(value);
        };
        if (!waiter()) waiters.push(waiter);
    });
}
function wake() {
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]()) waiters.splice(i, 1);
}

const sliding = new SlidingSync(
    baseUrl,
    new Map([[LIST, { ranges: [[0, WINDOW - 1]], timeline_limit: 1, required_state: [["m.room.name", ""]] }]]),
    {},
    client,
    5000,
);
let pending = [];
sliding.on(SlidingSyncEvent.RoomData, (roomId, data) => {
    const names = data.required_state.filter((e) => e.type === "m.room.name").map((e) => e.content.name);
    const update = {
        room_id: roomId,
        initial: data.initial ?? false,
        name: data.name ?? null,
        required_state_names: names,
        bodies: data.timeline.map((e) => e.content?.body ?? null),
        timeline_types: data.timeline.map((e) => e.type),
        bump_stamp: data.bump_stamp ?? null,
    };
    result.updates.push(update);
    pending.push(roomId);
});
sliding.on(SlidingSyncEvent.Lifecycle, (state, resp, err) => {
    if (err) {
        result.http_errors.push({ lifecycle: String(err.httpStatus ?? err) });
        return;
    }
    if (state !== SlidingSyncState.Complete) return;
    result.responses.push({ count: resp.lists[LIST]?.count ?? null, rooms: pending, pos: resp.pos });
    pending = [];
    wake();
});
sliding.start().catch((error) => finish(1, error));

await waitFor("initial response", () => result.responses.length > 0);
const oldest = result.rooms[0];
const inRange = result.rooms[roomCount - WINDOW / 2];
const seen = (roomId, body) => result.updates.some((u) => u.room_id === roomId && u.bodies.includes(body));

await sendText(oldest, "the oldest room speaks");
await waitFor("oldest room enters the list", () => seen(oldest, "the oldest room speaks"));
await sendText(inRange, "news in a listed room");
await waitFor("listed room updates", () => seen(inRange, "news in a listed room"));

sliding.stop();
client.stopClient();
finish(0);
