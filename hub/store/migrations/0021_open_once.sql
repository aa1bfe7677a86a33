-- The same `chat.open` sent again yields the chat the first one stored: an open whose
-- customer has an open chat (bot, queued or assigned) opened with the same key (topic and
-- a digest of the opening text: hub.rules.opening) stores nothing and gets that chat
-- (docs/protocol.md, "Opening a chat twice"). The index decides it, so two opens racing
-- on two nodes or in one batch cannot both store one. Null for chats opened another way
-- (by mail, by a frozen account's alert).
alter table conversations add column if not exists open_key text;
create unique index if not exists conversations_open_once
    on conversations (user_id, open_key)
    where open_key is not null and status in ('bot', 'queued', 'assigned');
