// The two wire formats of the hub's WebSocket: `supporthub.json.v1` (text frames, one JSON
// object each) and `supporthub.msgpack.v1` (binary frames, one msgpack map each).

import { decode as msgpackDecode, encode as msgpackEncode } from "./msgpack.js";

export const JSON_PROTOCOL = "supporthub.json.v1";
export const MSGPACK_PROTOCOL = "supporthub.msgpack.v1";

const utf8 = new TextDecoder();

/** @typedef {{name: "json"|"msgpack", protocol: string, encode: (frame: object) => string|Uint8Array}} Codec */

/** @type {Record<"json"|"msgpack", Codec>} */
export const CODECS = {
  json: { name: "json", protocol: JSON_PROTOCOL, encode: (frame) => JSON.stringify(frame) },
  msgpack: { name: "msgpack", protocol: MSGPACK_PROTOCOL, encode: (frame) => msgpackEncode(frame) },
};

/**
 * Decode a frame as it came off the socket: a string is JSON, bytes are msgpack (the
 * server answers in the format the subprotocol it chose names, so the kind of frame says
 * which one it is).
 * @param {string|ArrayBuffer|ArrayBufferView|Blob} data
 * @returns {any}
 */
export function decodeFrame(data) {
  if (typeof data === "string") return JSON.parse(data);
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
  return msgpackDecode(bytes);
}

/** JSON text that came as bytes (some WebSocket implementations hand text frames so). */
export function decodeText(bytes) {
  return JSON.parse(utf8.decode(bytes));
}
