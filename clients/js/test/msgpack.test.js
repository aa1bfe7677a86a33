import assert from "node:assert/strict";
import { test } from "node:test";
import { msgpackDecode, msgpackEncode } from "../src/index.js";

test("msgpack round-trips what frames hold", () => {
  const values = [
    null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 1.5, -0.25,
    "", "a", "x".repeat(31), "x".repeat(32), "y".repeat(300), "z".repeat(70000), "还没到账 ✓",
    [], [1, [2, [3]]], new Array(20).fill(7), {}, { type: "hello", resume: { conversations: { c: 3 } } },
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  ];
  for (const v of values) assert.deepEqual(msgpackDecode(msgpackEncode(v)), v);
  assert.deepEqual(msgpackDecode(msgpackEncode(new Uint8Array([1, 2, 3]))), new Uint8Array([1, 2, 3]));
  assert.equal(msgpackDecode(msgpackEncode(2n ** 63n - 1n)), 2n ** 63n - 1n);
});

test("msgpack refuses truncated data", () => {
  const bytes = msgpackEncode({ type: "message", text: "hello" });
  assert.throws(() => msgpackDecode(bytes.subarray(0, bytes.length - 1)));
});
