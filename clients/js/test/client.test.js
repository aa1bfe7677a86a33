// The client's bookkeeping without a hub: a scripted WebSocket stands in for the server.

import assert from "node:assert/strict";
import { test } from "node:test";
import { HubClient, SeqTracker, memoryStorage, msgpackDecode } from "../src/index.js";

/** A WebSocket whose server side is the test: `sent` holds the decoded frames. */
class ScriptedSocket {
  static last = null;
  constructor(url, protocols) {
    this.url = url;
    this.protocol = protocols[0];
    this.readyState = 0;
    this.sent = [];
    ScriptedSocket.last = this;
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.();
    });
  }
  send(data) {
    this.sent.push(typeof data === "string" ? JSON.parse(data) : msgpackDecode(data));
  }
  close(code = 1000) {
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason: "" }));
  }
  /** The server sends a frame. */
  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

async function connected(opts = {}) {
  const client = new HubClient({ url: "ws://hub.test/ws", token: "tok", WebSocket: ScriptedSocket, storage: memoryStorage(), ...opts });
  client.start();
  await tick();
  const ws = ScriptedSocket.last;
  ws.deliver({ type: "welcome", role: "user", sub: "u-1", session_id: "s" });
  return { client, ws };
}

test("hello comes first, with resume and the app's own fields, in the chosen codec", async () => {
  const client = new HubClient({
    url: "ws://hub.test/ws", token: () => "tok", WebSocket: ScriptedSocket, codec: "msgpack",
    storage: memoryStorage(), notificationsAfter: 41, conversations: { c1: 17 }, hello: { lang: "en", tz: "Asia/Shanghai" },
  });
  client.start();
  await tick();
  const ws = ScriptedSocket.last;
  assert.equal(ws.protocol, "supporthub.msgpack.v1");
  assert.deepEqual(ws.sent, [{ lang: "en", tz: "Asia/Shanghai", type: "hello", token: "tok", resume: { conversations: { c1: 17 }, notifications_after: 41 } }]);
  client.send({ type: "read", conversation_id: "c1", seq: 17 }, { queue: false }); // before welcome: dropped
  assert.equal(ws.sent.length, 1);
  client.stop();
});

test("each message and notification is handed on once; a gap holds the cursor back", async () => {
  const { client, ws } = await connected();
  const got = [];
  const gaps = [];
  client.on("message", (m) => got.push(`m${m.seq}`));
  client.on("notification", (n) => got.push(`n${n.seq}`));
  client.on("gap", (g) => gaps.push(g));
  const msg = (seq) => ({ type: "message", conversation_id: "c1", seq, message_id: `id${seq}`, text: "", sender: { role: "agent", id: "a" } });
  for (const seq of [1, 1, 3, 2, 3]) ws.deliver(msg(seq));
  ws.deliver({ ...msg(9), seq: 4, message_id: "id1" }); // a known id under another seq
  for (const seq of [1, 2, 2]) ws.deliver({ type: "notification", seq, notification_id: `n${seq}` });
  assert.deepEqual(got, ["m1", "m3", "m2", "n1", "n2"]);
  assert.equal(gaps.length, 1);
  assert.deepEqual(client.resumeState(), { conversations: { c1: 4 }, notifications_after: 2 });
  // the history of an assignment counts as received
  ws.deliver({ type: "chat.assigned", conversation_id: "c2", history: [{ ...msg(1), conversation_id: "c2", message_id: "h1" }] });
  ws.deliver({ ...msg(1), conversation_id: "c2", message_id: "h1" });
  assert.deepEqual(got, ["m1", "m3", "m2", "n1", "n2"]);
  client.stop();
});

test("a message left in the stored outbox is sent after the next welcome and leaves on its ack", async () => {
  const storage = memoryStorage();
  const frame = { type: "chat.send", conversation_id: "c1", client_msg_id: "m-1", text: "hi" };
  storage.setItem("supporthub.client.outbox", JSON.stringify([frame]));
  const { client, ws } = await connected({ storage });
  const sent = ws.sent.filter((f) => f.type === "chat.send");
  assert.equal(sent.length, 1);
  assert.equal(sent[0].client_msg_id, "m-1");
  const done = new Promise((resolve) => client.on("outbox.sent", resolve));
  ws.deliver({ type: "ack", id: sent[0].id, conversation_id: "c1", message_id: "x", seq: 5 });
  assert.equal((await done).ack.message_id, "x");
  assert.equal(storage.getItem("supporthub.client.outbox"), "[]");
  client.stop();
});

test("unavailable keeps a message for later; forbidden takes it out", async () => {
  const { client, ws } = await connected({ backoffBase: 1, backoffMax: 2 });
  const kept = client.sendMessage({ conversationId: "c1", text: "a", clientMsgId: "m-a" });
  const refused = client.sendMessage({ conversationId: "c1", text: "b", clientMsgId: "m-b" });
  const [a, b] = ws.sent.filter((f) => f.type === "chat.send");
  ws.deliver({ type: "error", id: a.id, code: "unavailable", message: "later" });
  ws.deliver({ type: "error", id: b.id, code: "forbidden", message: "no" });
  await assert.rejects(refused, (err) => err.code === "forbidden");
  assert.deepEqual(client.unsent.map((f) => f.client_msg_id), ["m-a"]);
  while (ws.sent.filter((f) => f.client_msg_id === "m-a").length < 2) await new Promise((r) => setTimeout(r, 5));
  ws.deliver({ type: "ack", id: a.id, message_id: "y", seq: 1 });
  assert.equal((await kept).message_id, "y");
  assert.deepEqual(client.unsent, []);
  client.stop();
});

test("the same client_msg_id twice is one entry, answered once for both", async () => {
  const { client, ws } = await connected();
  const one = client.sendMessage({ conversationId: "c1", text: "x", clientMsgId: "m-x" });
  const two = client.sendMessage({ conversationId: "c1", text: "x", clientMsgId: "m-x" });
  const sends = ws.sent.filter((f) => f.type === "chat.send");
  assert.equal(sends.length, 1);
  ws.deliver({ type: "ack", id: sends[0].id, message_id: "z", seq: 2 });
  assert.deepEqual([(await one).message_id, (await two).message_id], ["z", "z"]);
  client.stop();
});

test("backoff grows, is capped and jittered", () => {
  const client = new HubClient({ url: "ws://hub.test/ws", token: "t", WebSocket: ScriptedSocket, storage: memoryStorage(), backoffBase: 400, backoffMax: 15000 });
  for (let n = 0; n < 12; n++) {
    const ceiling = Math.min(15000, 400 * 2 ** n);
    const d = client.backoff(n);
    assert.ok(d >= ceiling / 2 && d <= ceiling, `${n}: ${d}`);
  }
  const spread = new Set(Array.from({ length: 20 }, () => client.backoff(3)));
  assert.ok(spread.size > 1);
});

test("a seq tracker fills holes and never goes back", () => {
  const t = new SeqTracker(5);
  assert.equal(t.accept(5), false);
  assert.equal(t.accept(7), true);
  assert.equal(t.hasGap, true);
  assert.equal(t.accept(6), true);
  assert.equal(t.watermark, 7);
  assert.equal(t.hasGap, false);
});
