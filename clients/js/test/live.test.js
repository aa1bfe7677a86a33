// The client against a real hub (started by the hub's test suite, tests/test_js_client.py,
// which passes its address and tokens in the environment; skipped without them): a
// connection cut mid-stream, frames delivered twice, an outbox carried over a reload, the
// server restarted. Nothing lost, nothing doubled, every message stored once.

import assert from "node:assert/strict";
import readline from "node:readline";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { HubClient, clientMsgId, memoryStorage } from "../src/index.js";
import { FaultyProxy } from "./proxy.js";

const BASE = process.env.SUPPORTHUB_TEST_URL;
const skip = BASE ? false : "needs a running hub (SUPPORTHUB_TEST_URL): run by tests/test_js_client.py";
const WS_URL = BASE ? `${BASE.replace(/^http/, "ws")}/ws` : "";
const PORT = BASE ? Number(new URL(BASE).port) : 0;
const WAIT_MS = 30000;

/** No per-message compression: the proxy may repeat a frame as it is. */
class PlainWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { perMessageDeflate: false });
    PlainWebSocket.opened += 1;
    this.addEventListener("message", () => {
      PlainWebSocket.received += 1;
    });
  }
}
PlainWebSocket.opened = 0;
PlainWebSocket.received = 0;

/** Resolve once `cond()` holds (checked after every frame and every 20 ms). */
async function until(cond, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function userToken(user) {
  const res = await fetch(`${BASE}/api/dev/token?user=${encodeURIComponent(user)}&name=Lin`);
  return (await res.json()).token;
}

let agent;
const assigned = new Set();
const fromUsers = []; // messages the agent got from users
const agentAll = []; // every message the agent got

// the control channel with the test suite (server stop/start): lines on stdout and stdin
let lines;
const inbox = [];
function control(cmd) {
  console.log(`@@supporthub ${cmd}`);
  return until(() => inbox.includes(`@@done ${cmd}`), `the suite to ${cmd} the hub`);
}

const clients = new Set(); // stopped at the end, whatever failed
const proxies = new Set();

function newProxy() {
  const proxy = new FaultyProxy(PORT);
  proxies.add(proxy);
  return proxy;
}

function newUser(opts = {}) {
  const id = `u-js-${Math.random().toString(36).slice(2, 10)}`;
  const client = new HubClient({
    url: WS_URL,
    token: () => userToken(id),
    WebSocket: PlainWebSocket,
    storage: memoryStorage(),
    backoffBase: 50,
    backoffMax: 1000,
    ...opts,
  });
  clients.add(client);
  const got = { messages: [], notifications: [] };
  client.on("message", (m) => got.messages.push(m));
  client.on("notification", (n) => got.notifications.push(n));
  return { id, client, got };
}

async function openChat(client) {
  const opened = await client.request(
    { type: "chat.open", topic: "payment", handoff: "agent", text: "hello" },
    { matchType: "chat.opened" },
  );
  const cid = opened.conversation_id;
  await until(() => assigned.has(cid), "the agent to get the chat");
  return cid;
}

async function agentSays(cid, text) {
  const ack = await agent.request({ type: "chat.send", conversation_id: cid, client_msg_id: clientMsgId(), text });
  assert.equal(ack.type, "ack");
}

const agentTexts = (got, cid) =>
  got.messages.filter((m) => m.conversation_id === cid && m.sender.role === "agent").map((m) => m.text);

before(async () => {
  if (skip) return;
  lines = readline.createInterface({ input: process.stdin });
  lines.on("line", (line) => inbox.push(line.trim()));
  agent = new HubClient({ url: WS_URL, token: process.env.SUPPORTHUB_TEST_AGENT_TOKEN, WebSocket, storage: memoryStorage(), backoffBase: 50, backoffMax: 1000 });
  const record = (m) => {
    agentAll.push(m);
    if (m.sender.role === "user") fromUsers.push(m);
  };
  agent.on("chat.assigned", (f) => {
    assigned.add(f.conversation_id);
    // after a reconnect the chat comes back with its history: what arrived meanwhile is there
    const known = new Set(agentAll.map((m) => m.message_id));
    for (const m of f.history || []) if (!known.has(m.message_id)) record(m);
  });
  agent.on("message", record);
  agent.start();
  await agent.once("welcome");
  const state = await agent.request({ type: "agent.status", status: "online" });
  assert.equal(state.status, "online");
});

after(() => {
  for (const c of clients) c.stop();
  for (const p of proxies) p.close();
  agent?.stop();
  lines?.close();
});

for (const codec of ["json", "msgpack"]) {
  test(`a connection cut mid-stream loses nothing and doubles nothing (${codec})`, { skip }, async () => {
    const proxy = newProxy();
    const port = await proxy.listen();
    const { client, got } = newUser({ codec, url: `ws://127.0.0.1:${port}/ws` });
    client.start();
    await client.once("welcome");
    const cid = await openChat(client);
    const opened = PlainWebSocket.opened;
    for (let i = 0; i < 10; i++) {
      if (i === 5) proxy.cut(); // the network fails under the stream
      await agentSays(cid, `m${i}`);
    }
    await until(() => agentTexts(got, cid).length >= 10, "all ten messages");
    assert.ok(PlainWebSocket.opened > opened, "it reconnected");
    await agentSays(cid, "end");
    await until(() => agentTexts(got, cid).includes("end"), "the last message");
    assert.deepEqual(agentTexts(got, cid), [...Array.from({ length: 10 }, (_, i) => `m${i}`), "end"]);
    const seqs = got.messages.filter((m) => m.conversation_id === cid).map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0] + i));
    client.stop();
    await proxy.close();
  });

  test(`frames delivered twice are handed on once (${codec})`, { skip }, async () => {
    const proxy = newProxy();
    proxy.duplicate = true;
    const port = await proxy.listen();
    const { client, got } = newUser({ codec, url: `ws://127.0.0.1:${port}/ws` });
    const welcomes = [];
    client.on("welcome", (w) => welcomes.push(w));
    client.start();
    await client.once("welcome");
    const cid = await openChat(client);
    const received = PlainWebSocket.received;
    for (let i = 0; i < 5; i++) await agentSays(cid, `d${i}`);
    const res = await fetch(`${BASE}/api/broadcasts`, {
      method: "POST",
      headers: { Authorization: `Bearer ${process.env.SUPPORTHUB_TEST_SUPERVISOR_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ title: `twice-${codec}`, body: "b" }),
    });
    assert.equal(res.status, 202);
    await agentSays(cid, "end");
    await until(() => agentTexts(got, cid).includes("end") && got.notifications.some((n) => n.title === `twice-${codec}`), "the frames");
    assert.ok(PlainWebSocket.received - received >= 12, "the proxy did repeat the frames");
    assert.deepEqual(agentTexts(got, cid), ["d0", "d1", "d2", "d3", "d4", "end"]);
    assert.equal(got.notifications.filter((n) => n.title === `twice-${codec}`).length, 1);
    client.stop();
    await proxy.close();
  });
}

test("the outbox survives a reload and each message is stored once", { skip }, async () => {
  const storage = memoryStorage(); // what localStorage is to a page, across its reloads
  const { id, client: first } = newUser({ storage });
  first.start();
  await first.once("welcome");
  const cid = await openChat(first);
  first.stop();

  // offline: nothing answers at the proxy's port
  const proxy = newProxy();
  proxy.refusing = true;
  const port = await proxy.listen();
  const offline = new HubClient({ url: `ws://127.0.0.1:${port}/ws`, token: () => userToken(id), WebSocket: PlainWebSocket, storage, backoffBase: 50 });
  clients.add(offline);
  offline.start();
  const sends = ["o0", "o1", "o2"].map((text) => offline.sendMessage({ conversationId: cid, text }));
  for (const p of sends) p.catch(() => {}); // the page goes away before they are acked
  const stored = storage.getItem("supporthub.client.outbox");
  assert.deepEqual(JSON.parse(stored).map((f) => f.text), ["o0", "o1", "o2"]);
  offline.stop(); // the reload
  await proxy.close();

  const before = fromUsers.length;
  const reloaded = new HubClient({ url: WS_URL, token: () => userToken(id), WebSocket: PlainWebSocket, storage });
  clients.add(reloaded);
  assert.deepEqual(reloaded.unsent.map((f) => f.text), ["o0", "o1", "o2"]);
  const acks = [];
  reloaded.on("outbox.sent", ({ ack }) => acks.push(ack));
  reloaded.start();
  await until(() => acks.length === 3, "the three acks");
  assert.deepEqual(JSON.parse(storage.getItem("supporthub.client.outbox")), []);
  await until(() => fromUsers.length - before >= 3, "the agent to get them");

  // a stale copy of the outbox (two tabs, a crash before the save) sends them again:
  // the hub answers with the stored messages and stores nothing new
  storage.setItem("supporthub.client.outbox", stored);
  reloaded.stop();
  const again = new HubClient({ url: WS_URL, token: () => userToken(id), WebSocket: PlainWebSocket, storage });
  clients.add(again);
  const acks2 = [];
  again.on("outbox.sent", ({ ack }) => acks2.push(ack));
  again.start();
  await until(() => acks2.length === 3, "the acks of the repeats");
  assert.deepEqual(acks2.map((a) => a.message_id).sort(), acks.map((a) => a.message_id).sort());
  await agentSays(cid, "end");
  await until(() => agentAll.some((m) => m.conversation_id === cid && m.text === "end"), "the agent's own last message");
  assert.deepEqual(fromUsers.slice(before).map((m) => m.text), ["o0", "o1", "o2"]);
  again.stop();
});

test("an upload, then a message that carries it", { skip }, async () => {
  const { client } = newUser({ codec: "msgpack" });
  client.start();
  await client.once("welcome");
  const cid = await openChat(client);
  const png = Uint8Array.from(
    atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
    (c) => c.charCodeAt(0),
  );
  const att = await client.upload({ conversationId: cid, file: new Blob([png], { type: "image/png" }), name: "dot.png" });
  assert.equal(att.content_type, "image/png");
  const ack = await client.sendMessage({ conversationId: cid, text: "", attachments: [att] });
  await until(() => fromUsers.some((m) => m.message_id === ack.message_id), "the agent to get it");
  const m = fromUsers.find((x) => x.message_id === ack.message_id);
  assert.deepEqual(m.attachments.map((a) => a.attachment_id), [att.attachment_id]);
  await assert.rejects(client.upload({ conversationId: cid, file: new Blob(["not an image"]), name: "x.txt" }), (err) => err.name === "HubError");
  client.stop();
});

test("the server restarted: resume, and a message written while it was down", { skip: skip || (process.env.SUPPORTHUB_TEST_CONTROL ? false : "no control channel") }, async () => {
  const { client, got } = newUser({ codec: "msgpack" });
  client.start();
  await client.once("welcome");
  const cid = await openChat(client);
  await agentSays(cid, "before");
  await until(() => agentTexts(got, cid).includes("before"), "the first reply");

  await control("stop");
  await until(() => client.state !== "open" && agent.state !== "open", "both to notice");
  const sent = client.sendMessage({ conversationId: cid, text: "while down" });
  await control("start");
  const ack = await sent;
  assert.equal(ack.type, "ack");
  await until(() => agent.state === "open", "the agent to be back");
  await agent.request({ type: "agent.status", status: "online" });
  await agentSays(cid, "after");
  const res = await fetch(`${BASE}/api/broadcasts`, {
    method: "POST",
    headers: { Authorization: `Bearer ${process.env.SUPPORTHUB_TEST_SUPERVISOR_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ title: "after-restart", body: "b" }),
  });
  assert.equal(res.status, 202);
  await until(() => agentTexts(got, cid).includes("after") && got.notifications.some((n) => n.title === "after-restart"), "the frames after the restart");
  await until(() => fromUsers.some((m) => m.text === "while down"), "the agent to get the message");
  assert.deepEqual(agentTexts(got, cid), ["before", "after"]);
  assert.equal(fromUsers.filter((m) => m.text === "while down").length, 1);
  assert.equal(got.messages.filter((m) => m.text === "while down").length, 1);
  client.stop();
});
