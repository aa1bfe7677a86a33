-- Step-up verification and the audit log.

-- One-time codes sent out of band. Only an HMAC of the code is kept (keyed with a secret
-- the database never sees), so a copy of this table does not reveal or let one guess codes.
create table verify_challenges (
    id              text primary key,
    user_id         text not null,
    conversation_id text,
    requested_by    text not null,   -- the agent who asked for it
    requested_role  text not null,
    channel         text not null default 'sms',
    code_hash       text not null,
    attempts        int not null default 0,
    status          text not null default 'pending'
                    check (status in ('pending', 'passed', 'locked', 'superseded')),
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null,
    verified_at     timestamptz,
    check ((status = 'passed') = (verified_at is not null))
);
create index verify_challenges_pending on verify_challenges (user_id) where status = 'pending';
create index verify_challenges_passed on verify_challenges (user_id, verified_at desc)
    where status = 'passed';

-- Who did what to whom. Append-only: the triggers below refuse UPDATE, DELETE and
-- TRUNCATE from any role; getting round them takes the table owner disabling a trigger
-- on purpose (ALTER TABLE), which is itself a DDL statement the server logs.
create table audit_log (
    id              bigserial primary key,
    ts              timestamptz not null default clock_timestamp(),
    actor_role      text not null,
    actor_id        text not null,
    action          text not null,
    subject_user_id text,
    conversation_id text,
    details         jsonb not null default '{}',
    address         text
);
create index audit_log_subject on audit_log (subject_user_id, id desc)
    where subject_user_id is not null;
create index audit_log_actor on audit_log (actor_id, id desc);

create function audit_log_is_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger audit_log_no_change before update or delete on audit_log
    for each row execute function audit_log_is_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_is_append_only();
