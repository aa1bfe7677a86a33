// @supporthub/client: the JavaScript client of the supporthub hub.
//
//   import { HubClient } from "@supporthub/client";            // Node, bundlers
//   import { HubClient } from "/clients/js/index.js";          // pages served by the hub
//
// See README.md, and docs/protocol.md ("Writing a client") in the hub's repository.

/**
 * @typedef {object} ClientOptions
 * @property {string|(() => string|Promise<string>)} token  a token, or a function called before every hello
 * @property {string} [url]  the hub's WebSocket URL (in a page: this origin's /ws)
 * @property {"json"|"msgpack"} [codec]  wire format (default json)
 * @property {any} [WebSocket]  the WebSocket class (default: globalThis.WebSocket)
 * @property {import("./storage.js").KeyValueStorage} [storage]  where the outbox lives (default: localStorage, else memory)
 * @property {string} [storageKey]  prefix of the keys in storage (default "supporthub.client")
 * @property {boolean} [persistCursors]  keep the resume cursors in storage too
 * @property {number|null} [notificationsAfter]  resume notifications after this seq
 * @property {Record<string, number>} [conversations]  {conversation_id: last_seq} already shown
 * @property {object|(() => object|Promise<object>)} [hello]  extra hello fields (lang, tz, ...)
 * @property {(reason: string) => void} [onUnauthorized]  close 4001: get a token, then restart()
 * @property {number} [backoffBase]  ms (default 400)
 * @property {number} [backoffMax]  ms (default 15000)
 * @property {() => number} [random]  jitter source (default Math.random)
 * @property {number} [pingInterval]  ms between heartbeats (default 20000)
 * @property {number} [pongTimeout]  ms to wait for a pong (default 10000)
 * @property {number|false} [refreshBefore]  ms before the session's exp to send auth.refresh with a fresh token (default 60000; false: never)
 * @property {boolean} [watchNetwork]  follow the page's online/offline events (default true)
 * @property {string} [httpUrl]  the hub's HTTP base for uploads (default: from url)
 * @property {typeof fetch} [fetch]  the fetch function for uploads
 */

export { HubClient, HubError, SeqTracker, clientMsgId, httpBaseOf } from "./client.js";
export { CODECS, JSON_PROTOCOL, MSGPACK_PROTOCOL, decodeFrame } from "./codec.js";
export { decode as msgpackDecode, encode as msgpackEncode, MsgpackError } from "./msgpack.js";
export { defaultStorage, memoryStorage } from "./storage.js";

/** The subprotocol of the JSON codec (what the first client spoke). */
export { JSON_PROTOCOL as SUBPROTOCOL } from "./codec.js";
