-- A notice's copies are numbered from each user's head (as `notif_head` reads it, migration
-- 0031, inline: a function with its own SET costs a call per copy), not from
-- `users.notif_seq`, which the update no longer bumps: it moves the cursor only, and
-- still locks the chunk's rows in id order, reading the key over the chunk's range (0030).
-- The head is read as of the update's statement: rows committed while it waited for a
-- row lock, or a row the hub is storing for that seq now, are not seen. `notice_chunk`
-- inserts plainly; if a seq was taken, it moves the cursors again and stores the copies
-- with ON CONFLICT DO NOTHING on the primary key (an insert in progress for the same seq
-- is waited for, and skips the copy if it commits), numbering the skipped copies again in
-- a new statement, which sees what committed meanwhile, until none is skipped: a
-- concurrent write never fails the chunk, never leaves a gap, and each user of the chunk
-- (their cursor moved) gets their one copy.
create or replace function bump_for_notice(notice bigint, due text[])
    returns table (user_id text, seq bigint)
    language sql volatile
    set enable_hashjoin = off
    set enable_nestloop = off
    rows 1000
as $$
    update users u set broadcast_cursor = $1
    from unnest($2::text[]) d(id)
    where u.id = d.id and u.broadcast_cursor < $1
      and u.id >= $2[1] and u.id <= $2[cardinality($2)]
    returning u.id, (select coalesce(max(n.seq), 0) from notifications n where n.user_id = u.id) + 1
$$;

create or replace function notice_chunk(lim int, here text[])
    returns table (notice bigint, notice_title text, notice_body text, notice_data jsonb,
                   notice_ts timestamptz, after_user text, up_to text, complete boolean,
                   user_ids text[], seqs bigint[], ids text[])
    language plpgsql volatile
as $$
declare
    n broadcasts;
    due text[];
    stored_users text[];  -- every copy stored by the chunk, as three arrays
    stored_seqs bigint[];
    stored_ids text[];
    got_users text[];
    got_seqs bigint[];
    got_ids text[];
    skipped text[];  -- users whose copy is still to store (its seq was taken)
begin
    perform pg_advisory_xact_lock(1399341667);
    select * into n from broadcasts b where b.completed_at is null order by b.id limit 1;
    if not found then
        return;
    end if;
    select coalesce(array_agg(c.id order by c.id), '{}') into due
    from (select u.id from users u where u.broadcast_cursor < n.id and u.id > n.done_up_to
          order by u.id limit lim) c;
    -- the usual case, no seq taken meanwhile: a plain insert, cheaper than ON CONFLICT's
    -- speculative one; when a seq was taken, the block's work is undone (cursors too)
    begin
        with copies as (
            insert into notifications as t
                (id, user_id, seq, kind, title, body, data, broadcast_id)
            select 'n' || n.id || '.' || b.user_id, b.user_id, b.seq, 'system.notice',
                   n.title, n.body, n.data, n.id
            from bump_for_notice(n.id, due) b order by b.user_id
            returning t.user_id, t.seq, t.id)
        select coalesce(array_agg(c.user_id), '{}'), coalesce(array_agg(c.seq), '{}'),
               coalesce(array_agg(c.id), '{}'), '{}'
        into stored_users, stored_seqs, stored_ids, skipped
        from copies c;
    exception when unique_violation then
        -- the cursors again; the loop below stores every copy, skipping taken seqs
        select coalesce(array_agg(b.user_id order by b.user_id), '{}') into skipped
        from bump_for_notice(n.id, due) b;
        stored_users := '{}';
        stored_seqs := '{}';
        stored_ids := '{}';
    end;
    while cardinality(skipped) > 0 loop
        with copies as (
            insert into notifications as t
                (id, user_id, seq, kind, title, body, data, broadcast_id)
            select 'n' || n.id || '.' || s.id, s.id,
                   (select coalesce(max(k.seq), 0) from notifications k where k.user_id = s.id) + 1,
                   'system.notice',
                   n.title, n.body, n.data, n.id
            from unnest(skipped) s(id) order by s.id
            on conflict (user_id, seq) do nothing
            returning t.user_id, t.seq, t.id)
        select coalesce(array_agg(c.user_id), '{}'), coalesce(array_agg(c.seq), '{}'),
               coalesce(array_agg(c.id), '{}'),
               (select coalesce(array_agg(s.id order by s.id), '{}') from unnest(skipped) s(id)
                where not exists (select 1 from copies k where k.user_id = s.id))
        into got_users, got_seqs, got_ids, skipped
        from copies c;
        stored_users := stored_users || got_users;
        stored_seqs := stored_seqs || got_seqs;
        stored_ids := stored_ids || got_ids;
    end loop;
    select coalesce(array_agg(c.user_id), '{}'), coalesce(array_agg(c.seq), '{}'),
           coalesce(array_agg(c.id), '{}')
    into user_ids, seqs, ids
    from unnest(stored_users, stored_seqs, stored_ids) as c(user_id, seq, id)
    left join unnest(here) as h(id) on h.id = c.user_id
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
