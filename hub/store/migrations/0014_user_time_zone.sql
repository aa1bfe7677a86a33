-- The time zone the customer's devices last said (IANA name, from `hello.tz`): times in
-- texts made for the user as a whole (stored notifications, pushes, the bot's answers)
-- are shown in it; null: the hub's default zone.
alter table users add column if not exists tz text;
