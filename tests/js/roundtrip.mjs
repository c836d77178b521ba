// matrix-js-sdk with its Rust crypto, driven against a Vignette server: an encrypted room round trip.
//
// Usage: node roundtrip.mjs HOMESERVER_URL [--timeout SECONDS]
//
// Two clients register, start their Rust crypto (in-memory store: Node has no IndexedDB) and sync.
// Alice creates an m.megolm.v1.aes-sha2 room and invites Bob, Bob joins, and each sends a message
// that the other must decrypt. The result is one JSON object on stdout; the SDK's own log goes to
// stderr. Exit status 0 only when every check passed. Waits are event-driven; the overall timeout
// is only a guard so that a broken server fails the run instead of hanging it.

import {
    baseUrl, finish, option, packageVersion, randomHex, registerClient, result, sdk, startRun,
} from "./lib.mjs";

const { EventShieldColour, EventShieldReason } = await import("matrix-js-sdk/lib/crypto-api/index.js");

const MEGOLM = "m.megolm.v1.aes-sha2";
const PASSWORD = "correct horse battery " + randomHex(4);

Object.assign(result, {
    matrix_sdk_crypto_wasm: packageVersion("@matrix-org/matrix-sdk-crypto-wasm"),
    homeserver: baseUrl,
    users: {},
    messages: [],
});

startRun("node roundtrip.mjs HOMESERVER_URL [--timeout SECONDS]", option("--timeout", 120));

/** Resolve once `check()` is truthy, re-checking on each of `events` of `emitter` and after
 * every sync response the client has processed. */
function waitFor(step, emitter, someEvents, check) {
    result.step = step;
    const events = [...new Set([...someEvents, sdk.ClientEvent.Sync])];
    return new Promise((resolve, reject) => {
        const listener = async () => {
            try {
                const value = await check();
                if (value) {
                    for (const event of events) emitter.off(event, listener);
                    resolve(value);
                }
            } catch (error) {
                for (const event of events) emitter.off(event, listener);
                reject(error);
            }
        };
        for (const event of events) emitter.on(event, listener);
        listener();
    });
}

async function registerAndStart(name) {
    result.step = `register ${name}`;
    const { registered, client } = await registerClient(`js-${name}-${randomHex(4)}`, PASSWORD,
        { initial_device_display_name: `matrix-js-sdk ${name}` });
    result.step = `initRustCrypto ${name}`;
    await client.initRustCrypto({ useIndexedDB: false });
    result.users[name] = { user_id: registered.user_id, device_id: registered.device_id };

    const syncStates = [];
    client.on(sdk.ClientEvent.Sync, (state, _previous, data) => {
        if (syncStates.at(-1) !== state) syncStates.push(state);
        if (state === "ERROR") result.users[name].sync_error = String(data?.error ?? "");
    });
    result.users[name].sync_states = syncStates;
    await client.startClient({ initialSyncLimit: 20 });
    await waitFor(`first sync ${name}`, client, [sdk.ClientEvent.Sync],
        () => client.isInitialSyncComplete());
    return { name, client, accessToken: registered.access_token, userId: registered.user_id };
}

/** What the server itself hands out for the event: the raw JSON, fetched without the SDK. */
async function rawEvent(user, roomId, eventId) {
    const url = `${baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`;
    const response = await fetch(url, { headers: { Authorization: `Bearer ${user.accessToken}` } });
    if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
    return response.json();
}

async function sendAndDecrypt(sender, receiver, roomId) {
    const text = `${sender.name} to ${receiver.name} ${randomHex(8)}`;
    result.step = `${sender.name} sends`;
    const { event_id: eventId } = await sender.client.sendMessage(roomId, { msgtype: "m.text", body: text });
    const room = receiver.client.getRoom(roomId);
    const progress = { event_id: eventId, seen: false };
    result.waiting_for = progress;
    const event = await waitFor(`${receiver.name} decrypts ${sender.name}'s message`, receiver.client,
        [sdk.RoomEvent.Timeline, sdk.MatrixEventEvent.Decrypted],
        () => {
            const found = room.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
            if (found) {
                Object.assign(progress, { seen: true, type: found.getType(),
                    decryption_failure: found.decryptionFailureReason ?? null });
            }
            return found && !found.isBeingDecrypted() && !found.isDecryptionFailure()
                && found.getType() === "m.room.message" ? found : undefined;
        });
    const info = await receiver.client.getCrypto().getEncryptionInfoForEvent(event);
    const raw = await rawEvent(sender, roomId, eventId);
    delete result.waiting_for;
    result.messages.push({
        from: sender.name,
        to: receiver.name,
        event_id: eventId,
        sent: text,
        received: event.getContent().body,
        received_sender: event.getSender(),
        wire_type: event.getWireType(),
        wire_algorithm: event.getWireContent().algorithm,
        sender_device: event.getWireContent().device_id ?? null,
        // Informational: neither test device is cross-signed, so the SDK marks them unverified.
        shield_colour: info ? EventShieldColour[info.shieldColour] : null,
        shield_reason: info?.shieldReason != null ? EventShieldReason[info.shieldReason] : null,
        server_type: raw.type,
        server_algorithm: raw.content?.algorithm ?? null,
        server_has_plaintext: JSON.stringify(raw).includes(text),
    });
}

try {
    const alice = await registerAndStart("alice");
    const bob = await registerAndStart("bob");

    result.step = "alice creates the encrypted room";
    const { room_id: roomId } = await alice.client.createRoom({
        preset: sdk.Preset.PrivateChat,
        invite: [bob.userId],
        initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
    });
    result.room_id = roomId;

    await waitFor("bob sees the invite", bob.client, [sdk.RoomEvent.MyMembership],
        () => bob.client.getRoom(roomId)?.getMyMembership() === "invite");
    result.step = "bob joins";
    await bob.client.joinRoom(roomId);
    await waitFor("alice sees bob joined", alice.client, [sdk.RoomStateEvent.Members],
        () => alice.client.getRoom(roomId)?.getMember(bob.userId)?.membership === "join");
    await waitFor("bob has the room's state", bob.client, [sdk.RoomEvent.MyMembership, sdk.ClientEvent.Sync],
        () => bob.client.getRoom(roomId)?.getMyMembership() === "join");

    for (const user of [alice, bob]) {
        result.users[user.name].room_encrypted = await user.client.getCrypto().isEncryptionEnabledInRoom(roomId);
        result.users[user.name].room_algorithm = user.client.getRoom(roomId).currentState
            .getStateEvents("m.room.encryption", "")?.getContent().algorithm ?? null;
    }

    await sendAndDecrypt(alice, bob, roomId);
    await sendAndDecrypt(bob, alice, roomId);

    result.step = "done";
    for (const user of [alice, bob]) user.client.stopClient();
    const passed = result.messages.length === 2 && result.messages.every(
        (m) => m.received === m.sent && m.wire_type === "m.room.encrypted" && !m.server_has_plaintext);
    finish(passed ? 0 : 1, passed ? undefined : "a message did not round-trip as expected");
} catch (error) {
    finish(1, error);
}
