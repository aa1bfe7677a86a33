// Types of @supporthub/client (hand-written; the code is plain ES modules with JSDoc).

export type Role = "user" | "agent" | "supervisor" | "service";
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "stopped" | "unauthorized";
export type ErrorCode =
  | "bad_frame" | "unauthorized" | "forbidden" | "not_found" | "invalid"
  | "rate_limited" | "conflict" | "unavailable";

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface Sender { role: "user" | "agent" | "bot" | "system"; id: string; name?: string }

export interface Attachment {
  attachment_id: string; content_type: string; size: number; name: string; url: string;
  thumbnail_url?: string; width?: number; height?: number;
}

export interface Frame { type: string; id?: string; [field: string]: unknown }

export interface Welcome extends Frame {
  type: "welcome"; role: Role; sub: string; session_id: string; exp?: number;
  notifications_seq?: number; notifications_acked?: number;
  conversations?: Array<{ conversation_id: string; status: string; topic: string; last_seq: number; agent?: { id: string; name: string } }>;
  agent?: { id: string; name: string; status: string; capacity: number; active: number; skills: string[]; supervisor: boolean };
}
export interface Message extends Frame {
  type: "message"; conversation_id: string; seq: number; message_id: string; client_msg_id?: string;
  sender: Sender; text: string; ts: string; attachments?: Attachment[];
  choices?: Array<{ label: string; text: string }>;
}
export interface Notification extends Frame {
  type: "notification"; seq: number; notification_id: string;
  kind: "transaction.status" | "security.alert" | "system.notice" | string;
  title: string; body: string; data: Record<string, unknown>; ts: string;
}
export interface Ack extends Frame { type: "ack"; id: string; conversation_id?: string; message_id?: string; seq?: number; client_msg_id?: string }
export interface ErrorFrame extends Frame { type: "error"; id?: string; code: ErrorCode; message: string }
export interface ChatOpened extends Frame { type: "chat.opened"; conversation_id: string; status: "bot" | "queued" | "assigned"; topic?: string; existing?: boolean }
export interface ChatQueued extends Frame { type: "chat.queued"; conversation_id: string; position: number; eta_s: number; queue_seq?: number }
export interface ChatAssigned extends Frame {
  type: "chat.assigned"; conversation_id: string;
  agent?: { id: string; name: string }; user?: { id: string; name: string };
  topic?: string; priority?: string; history?: Message[]; resumed?: boolean;
}
export interface Typing extends Frame { type: "typing"; conversation_id: string; state: boolean; from?: unknown }
export interface Read extends Frame { type: "read"; conversation_id: string; seq: number; by?: unknown }
export interface ChatClosed extends Frame { type: "chat.closed"; conversation_id: string; by: string }
export interface AgentState extends Frame { type: "agent.state"; status: string; capacity: number; active: number }
export interface Pong extends Frame { type: "pong" }

/** Frame type -> frame shape, for `on()`; other types arrive as `Frame`. */
export interface FrameMap {
  welcome: Welcome; message: Message; notification: Notification; ack: Ack; error: ErrorFrame;
  "chat.opened": ChatOpened; "chat.queued": ChatQueued; "chat.assigned": ChatAssigned;
  typing: Typing; read: Read; "chat.closed": ChatClosed; "agent.state": AgentState; pong: Pong;
}

/** The client's own events. */
export interface ClientEventMap {
  state: { state: ConnectionState; detail?: string };
  "outbox.sent": { frame: Frame; ack: Ack };
  "outbox.failed": { frame: Frame; error: HubError };
  gap: { conversation_id?: string; after?: number; notifications_after?: number };
  "*": Frame;
}

export interface ClientOptions {
  token: string | (() => string | Promise<string>);
  url?: string;
  codec?: "json" | "msgpack";
  WebSocket?: unknown;
  storage?: KeyValueStorage;
  storageKey?: string;
  persistCursors?: boolean;
  notificationsAfter?: number | null;
  conversations?: Record<string, number>;
  hello?: Record<string, unknown> | (() => Record<string, unknown> | Promise<Record<string, unknown>>);
  onUnauthorized?: (reason: string) => void;
  backoffBase?: number;
  backoffMax?: number;
  random?: () => number;
  pingInterval?: number;
  pongTimeout?: number;
  /** ms before the session's `exp` to send `auth.refresh` with a fresh token (default 60000; false: never) */
  refreshBefore?: number | false;
  watchNetwork?: boolean;
  httpUrl?: string;
  fetch?: typeof fetch;
}

export interface RequestOptions { timeout?: number | null; retry?: boolean; matchType?: string | null }

export class HubError extends Error {
  constructor(code: string, message?: string, frame?: object | null);
  code: ErrorCode | "timeout" | "disconnected" | "stopped" | "http" | string;
  frame: Record<string, unknown> | null;
}

export class SeqTracker {
  constructor(watermark?: number);
  watermark: number;
  readonly hasGap: boolean;
  accept(seq: number): boolean;
}

export class HubClient {
  constructor(opts: ClientOptions);
  readonly url: string;
  state: ConnectionState;
  welcome: Welcome | null;
  ws: WebSocket | null;
  notifications: SeqTracker | null;
  conversations: Map<string, SeqTracker>;
  readonly connected: boolean;
  readonly unsent: Frame[];
  readonly httpUrl: string;

  on<K extends keyof FrameMap>(type: K, fn: (frame: FrameMap[K]) => void): () => void;
  on<K extends keyof ClientEventMap>(type: K, fn: (event: ClientEventMap[K]) => void): () => void;
  on(type: string, fn: (frame: Frame) => void): () => void;
  once<K extends keyof FrameMap>(type: K, pred?: (frame: FrameMap[K]) => boolean, timeout?: number): Promise<FrameMap[K]>;
  once(type: string, pred?: (frame: Frame) => boolean, timeout?: number): Promise<Frame>;
  dispatch(handlers: { [K in keyof FrameMap]?: (frame: FrameMap[K]) => void } & Record<string, (frame: any) => void>): () => void;

  start(): void;
  stop(): void;
  restart(): void;
  backoff(attempt: number): number;
  resumeState(): { notifications_after?: number; conversations: Record<string, number> };
  track(conversationId: string, seq?: number): SeqTracker;
  forget(conversationId: string): void;
  acceptMessage(m: Message): boolean;
  acceptNotification(n: Notification): boolean;

  send(frame: Frame, opts?: { queue?: boolean }): boolean;
  request<T extends Frame = Frame>(frame: Frame, opts?: RequestOptions): Promise<T>;
  sendMessage(args: {
    conversationId: string; text?: string; attachments?: Array<string | Attachment>;
    clientMsgId?: string; timeout?: number | null;
  }): Promise<Ack>;
  upload(args: { conversationId: string; file: Blob; name?: string }): Promise<Attachment>;
}

export function clientMsgId(): string;
export function httpBaseOf(wsUrl: string): string;
export const JSON_PROTOCOL: "supporthub.json.v1";
export const MSGPACK_PROTOCOL: "supporthub.msgpack.v1";
export const SUBPROTOCOL: "supporthub.json.v1";
export const CODECS: Record<"json" | "msgpack", { name: string; protocol: string; encode(frame: object): string | Uint8Array }>;
export function decodeFrame(data: string | ArrayBuffer | ArrayBufferView): any;
export function msgpackEncode(value: unknown): Uint8Array;
export function msgpackDecode(data: Uint8Array | ArrayBuffer | ArrayBufferView): any;
export class MsgpackError extends Error {}
export function memoryStorage(): KeyValueStorage;
export function defaultStorage(): KeyValueStorage;
