-- Per device language and time zone.
--
-- The time zone the customer's devices last said (IANA name, from `hello.tz`): times in
-- texts made for the user as a whole (stored notifications, pushes, the bot's answers)
-- are shown in it; null: the hub's default zone.
alter table users add column if not exists tz text;

-- A text the hub itself wrote into a chat (system messages), in every language
-- ({"zh": ..., "en": ...}): each of the user's devices shows the one of its language;
-- `text` stays the chat's. Null for what people and the bot wrote.
alter table messages add column if not exists texts jsonb;
