-- A chunk's update reads the users from its first id to its last through the primary
-- key, not from the table's first id: the merge join of 0028 (its reasons in 0026) read
-- the key from the start up to the chunk, so a notice to N users in chunks of C read
-- about N * N / (2 * C) index entries in all (a million users: 500 million).
create or replace function bump_for_notice(notice bigint, due text[])
    returns table (user_id text, seq bigint)
    language sql volatile
    set enable_hashjoin = off
    set enable_nestloop = off
    rows 1000
as $$
    update users u set notif_seq = u.notif_seq + 1, broadcast_cursor = $1
    from unnest($2::text[]) d(id)
    where u.id = d.id and u.broadcast_cursor < $1
      and u.id >= $2[1] and u.id <= $2[cardinality($2)]
    returning u.id, u.notif_seq
$$;
