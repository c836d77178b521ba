// What every script here shares: stdout kept for the one JSON result, the SDK loaded, the arguments,
// the SDK's HTTP refusals recorded, the overall timeout guard, and registering a user.
//
// Import it first: its body quiets console.* before matrix-js-sdk is loaded.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

// The SDK logs through console.*: keep stdout for the result alone.
for (const level of ["log", "info", "debug", "trace", "warn", "error"]) {
    console[level] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

export const sdk = await import("matrix-js-sdk");
const { logger } = await import("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.VIGNETTE_JS_LOG_LEVEL ?? "info");

/** The installed version of a package of node_modules. */
export const packageVersion = (name) =>
    JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, import.meta.url), "utf8")).version;

export const args = process.argv.slice(2);
export const baseUrl = args[0];

/** The number after `--name` on the command line, or `fallback`. */
export function option(name, fallback) {
    const index = args.indexOf(name);
    return index >= 0 ? Number(args[index + 1]) : fallback;
}

export const randomHex = (bytes) => randomBytes(bytes).toString("hex");

/** The run's result, printed as one JSON object by `finish`; `step` says where a failure happened. */
export const result = {
    ok: false,
    step: "start",
    node: process.versions.node,
    matrix_js_sdk: packageVersion("matrix-js-sdk"),
    // Every request of the SDK that the server refused, for diagnosis (a run may still pass:
    // the SDK probes some optional endpoints).
    http_errors: [],
};

/** Called with each URL the SDK fetches (before the request), e.g. to note the paths it uses. */
export const requestObservers = [];

/** The SDK's fetch, observed: non-2xx answers are recorded (counted per method, path, status and
 * errcode), nothing is changed. */
export async function observedFetch(input, init) {
    const url = new URL(input instanceof Request ? input.url : String(input));
    for (const observe of requestObservers) observe(url);
    const response = await fetch(input, init);
    if (!response.ok) {
        let errcode = null;
        try {
            errcode = (await response.clone().json()).errcode ?? null;
        } catch {
            // not JSON
        }
        const method = init?.method ?? "GET";
        const seen = result.http_errors.find((e) =>
            e.method === method && e.path === url.pathname && e.status === response.status && e.errcode === errcode);
        if (seen) seen.count += 1;
        else result.http_errors.push({ method, path: url.pathname, status: response.status, errcode, count: 1 });
    }
    return response;
}

/** Print the result and exit with `code` (0 only when every check passed). */
export function finish(code, error) {
    if (error !== undefined) {
        result.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        if (error?.stack) process.stderr.write(error.stack + "\n");
    }
    result.ok = code === 0;
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(code);
}

/** Check the URL argument and arm the guards: an overall timeout (so that a broken server fails the
 * run instead of hanging it; waits are event-driven) and a failure on any unhandled rejection. */
export function startRun(usage, timeoutSeconds) {
    if (!baseUrl) finish(2, `usage: ${usage}`);
    setTimeout(() => finish(1, `overall timeout of ${timeoutSeconds}s reached during step "${result.step}"`),
        timeoutSeconds * 1000).unref();
    process.on("unhandledRejection", (reason) => finish(1, reason));
}

/** Register `username` (m.login.dummy) and return the registration and a client logged in as it. */
export async function registerClient(username, password, extra = {}) {
    const registrar = sdk.createClient({ baseUrl, fetchFn: observedFetch });
    const registered = await registrar.registerRequest({
        username,
        password,
        auth: { type: "m.login.dummy" },
        ...extra,
    });
    const client = sdk.createClient({
        baseUrl,
        userId: registered.user_id,
        deviceId: registered.device_id,
        accessToken: registered.access_token,
        fetchFn: observedFetch,
    });
    return { registered, client };
}
