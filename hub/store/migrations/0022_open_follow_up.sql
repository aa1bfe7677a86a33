-- A chat.open stores the chat and its opening text (message 1) in one statement; in a bot
-- chat the help bot's first turn follows that commit. The chat carries when that
-- follow-up was last taken on until it is done (null: nothing left; a queued chat needs
-- none, every routing pass places it), so an open whose node gave up waiting for the
-- store after it had committed is finished by the same open sent again, or by the sweep
-- (docs/protocol.md, "Opening a chat twice").
alter table conversations add column if not exists open_follow_up_at timestamptz;
create index if not exists conversations_open_follow_up
    on conversations (open_follow_up_at) where open_follow_up_at is not null;
