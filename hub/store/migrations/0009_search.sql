-- Conversation search: trigram indexes on message text and user names (pg_trgm), which
-- serve `ilike '%...%'` in any script, Chinese included (under a UTF-8 ctype). Where the
-- extension cannot be created (no privilege), search still works, unindexed.
do $$
begin
    create extension if not exists pg_trgm;
exception when insufficient_privilege or undefined_file then
    raise notice 'pg_trgm unavailable: conversation search runs without an index';
end
$$;

do $$
begin
    if exists (select 1 from pg_extension where extname = 'pg_trgm') then
        create index if not exists messages_text_trgm on messages using gin (text gin_trgm_ops);
        create index if not exists users_name_trgm on users using gin (name gin_trgm_ops);
    end if;
end
$$;
