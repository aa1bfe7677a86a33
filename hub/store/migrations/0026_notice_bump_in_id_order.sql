-- A system notice bumps every user's seq and broadcast cursor. The notification writes
-- lock their users' rows in id order, so the notice must too, or the two wait for each
-- other in a cycle (a deadlock, which PostgreSQL ends by failing one). The notice locked
-- them with a `select ... order by id for update` first and updated them after: locking
-- a row writes it (and a WAL record), and the update writes it again. Here the update
-- locks them itself, in id order: its rows come from a merge join on the id (the only
-- join this function's settings leave; a hash join would hand them over in the table's
-- physical order). The settings hold for this call only, not for the statement that
-- calls it (which joins the copies with the node's users by hash).
create or replace function bump_for_notice(notice bigint)
    returns table (user_id text, seq bigint)
    language sql volatile
    set enable_hashjoin = off
    set enable_nestloop = off
    rows 10000
as $$
    update users u set notif_seq = u.notif_seq + 1, broadcast_cursor = $1
    from (select id from users where broadcast_cursor < $1 order by id) due
    where u.id = due.id
    returning u.id, u.notif_seq
$$;
