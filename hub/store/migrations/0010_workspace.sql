-- The agents' workspace: handover notes on transfer, resolve outcomes and tags, macros.
alter table conversations add column if not exists handover jsonb;  -- {from: {id, name}, note, note_id}
alter table conversations add column if not exists outcome text
    check (outcome in ('solved', 'follow_up', 'duplicate', 'spam'));
alter table conversations add column if not exists tags text[] not null default '{}';

-- Reply snippets: `personal` ones belong to their owner, `team` ones to everyone (kept by
-- supervisors). Bodies hold variables such as {customer_name}, expanded in the console.
create table if not exists macros (
    id          text primary key,
    scope       text not null check (scope in ('personal', 'team')),
    owner_id    text not null references agents(id) on delete cascade,
    title       text not null,
    body_zh     text not null default '',
    body_en     text not null default '',
    topics      text[] not null default '{}',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index if not exists macros_owner on macros (owner_id) where scope = 'personal';

-- When a customer's socket last opened or closed (shown to the agent serving them).
alter table users add column if not exists last_seen_at timestamptz;
