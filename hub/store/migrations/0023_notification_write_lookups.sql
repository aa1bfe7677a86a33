-- The two lookups of the notifications' write, always through an index. The write is a
-- prepared statement: after five runs PostgreSQL may keep a generic plan, made with the
-- tables' sizes at that moment, and one made while `notifications` (or `conversations`)
-- was small reads the whole table on every batch (a hash anti-join over a sequential
-- scan, or a scan per id inside a subplan) however large the table grows, until an
-- ANALYZE replaces it. A function's own SET applies for its call only (no session
-- setting: it holds behind a transaction-pooling PgBouncer) and makes every plan of its
-- query, cached or not, an index lookup whatever the table's size.

-- Which of these event ids already made their notification (the unique index on event_id).
create or replace function handled_event_ids(event_ids text[]) returns setof text
    language sql stable
    set enable_seqscan = off
    rows 1
as $$
    select event_id from notifications where event_id = any (event_ids)
$$;

-- The open chats of these users (the index on user_id).
create or replace function open_chats_of(user_ids text[]) returns setof conversations
    language sql stable
    set enable_seqscan = off
    rows 10
as $$
    select * from conversations
    where user_id = any (user_ids) and status = any ('{bot,queued,assigned}'::text[])
$$;
