-- A system notice is stored in chunks of users in id order, each chunk its own
-- transaction, so its first users are pushed their copy while PostgreSQL stores the next
-- chunk, and a user's row held by a slow transaction holds up only its own chunk.
--
-- `done_up_to` is the id of the last user of the notice's last committed chunk (every
-- user up to it with a cursor below the notice has a copy); `completed_at` is set by the
-- chunk that finds no user left. A notice stays incomplete when the process storing it
-- dies between chunks: the next chunk of anyone (the next notice's sender, the sweeper)
-- goes on with the oldest incomplete notice first, so notices are stored one after the
-- other and a user's seqs follow the notices' ids. Rows stored by an older release (one
-- transaction each) are complete.
alter table broadcasts
    add column done_up_to text not null default '',
    add column completed_at timestamptz default now();
create index broadcasts_incomplete on broadcasts (id) where completed_at is null;

-- The users of one chunk (`due`, in id order) get their seq and cursor bumped, those whose
-- cursor is still below the notice: a user who connected meanwhile got the notice from
-- `materialise_broadcasts`, whose row lock this update waits for and whose cursor it then
-- reads as that left it. The update locks the rows in id order, as the notification
-- writes do (a merge join on the id; the reasons are in 0026).
drop function bump_for_notice(bigint);
create function bump_for_notice(notice bigint, due text[])
    returns table (user_id text, seq bigint)
    language sql volatile
    set enable_hashjoin = off
    set enable_nestloop = off
    rows 1000
as $$
    update users u set notif_seq = u.notif_seq + 1, broadcast_cursor = $1
    from unnest($2::text[]) d(id)
    where u.id = d.id and u.broadcast_cursor < $1
    returning u.id, u.notif_seq
$$;

-- One chunk of the oldest incomplete notice, in one statement and one transaction: the
-- notice lock (the one the notice's insert takes, "ShBc"; transaction-scoped, so it means
-- the same through a transaction-pooling PgBouncer), the next `lim` users after
-- `done_up_to` whose cursor is below the notice, their copies (the id is the notice's and
-- the user's, "n12.u-7"), and the notice's progress. Returns the notice, the chunk's range
-- of users (after_user, up_to], whether the notice is complete now, and the copies of the
-- users in `here` (the calling node's; null: of every user of the chunk) as three
-- arrays, their time the chunk's (as stored); no row when no notice is incomplete.
create function notice_chunk(lim int, here text[])
    returns table (notice bigint, notice_title text, notice_body text, notice_data jsonb,
                   notice_ts timestamptz, after_user text, up_to text, complete boolean,
                   user_ids text[], seqs bigint[], ids text[])
    language plpgsql volatile
as $$
declare
    n broadcasts;
    due text[];
begin
    perform pg_advisory_xact_lock(1399341667);
    select * into n from broadcasts b where b.completed_at is null order by b.id limit 1;
    if not found then
        return;
    end if;
    select coalesce(array_agg(c.id order by c.id), '{}') into due
    from (select u.id from users u where u.broadcast_cursor < n.id and u.id > n.done_up_to
          order by u.id limit lim) c;
    with copies as (
        insert into notifications as t
            (id, user_id, seq, kind, title, body, data, broadcast_id)
        select 'n' || n.id || '.' || b.user_id, b.user_id, b.seq, 'system.notice',
               n.title, n.body, n.data, n.id
        from bump_for_notice(n.id, due) b
        returning t.user_id, t.seq, t.id)
    select coalesce(array_agg(c.user_id), '{}'), coalesce(array_agg(c.seq), '{}'),
           coalesce(array_agg(c.id), '{}')
    into user_ids, seqs, ids
    from copies c left join unnest(here) as h(id) on h.id = c.user_id
    where here is null or h.id is not null;
    notice := n.id;
    notice_title := n.title;
    notice_body := n.body;
    notice_data := n.data;
    notice_ts := now();  -- the copies' created_at: their frames' ts
    after_user := n.done_up_to;
    up_to := coalesce(due[cardinality(due)], n.done_up_to);
    complete := cardinality(due) < lim;
    update broadcasts b set done_up_to = up_to,
        completed_at = case when complete then now() end
    where b.id = n.id;
    return next;
end
$$;
