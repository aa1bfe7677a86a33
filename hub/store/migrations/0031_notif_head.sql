-- A user's notifications are numbered from the last one stored: the head of a user's seqs
-- is the largest seq of their rows (0 when none), one backward descent of the primary key
-- (user_id, seq). It replaces `users.notif_seq`, which every write had to bump (a row
-- lock and an update per user per batch, about a quarter of PostgreSQL's work per
-- notification). A writer inserts the head + 1 read from committed rows, or from the
-- hub's memory of what it stored itself; two writers that take the same seq meet on the
-- primary key, and the later one numbers again (the hub) or skips the row and numbers it
-- again (the statements of migration 0032 onwards). Rows are never deleted, so the head
-- never goes back, and a seq is only written after the one before it committed: seqs
-- stay gapless. The column stays, no longer kept up to date.
create function notif_head(user_id text) returns bigint
    language sql stable
    set enable_seqscan = off
as $$
    select coalesce(max(n.seq), 0) from notifications n where n.user_id = $1
$$;

-- The heads of these users, each user made known (a notification's user is a user, as
-- when the writes bumped their row): what a node loads before numbering their writes.
create function notif_heads(user_ids text[]) returns table (user_id text, seq bigint)
    language plpgsql volatile
    set enable_seqscan = off
as $$
begin
    insert into users (id) select u from unnest(user_ids) u order by 1 on conflict (id) do nothing;
    return query select u.id, coalesce((select max(n.seq) from notifications n
                                        where n.user_id = u.id), 0)
                 from unnest(user_ids) u(id);
end
$$;
