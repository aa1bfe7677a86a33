-- supporthub hub schema: users, agents, conversations, messages, notifications.

create table users (
    id               text primary key,
    name             text,
    lang             text not null default 'zh',
    notif_seq        bigint not null default 0,   -- last notification seq handed out
    notif_acked      bigint not null default 0,   -- what the user has seen (notifications.ack)
    broadcast_cursor bigint not null default 0,   -- last broadcast materialised for this user
    created_at       timestamptz not null default now(),
    last_seen_at     timestamptz
);

create table agents (
    id            text primary key,
    username      text not null unique,
    password_hash text not null,
    name          text not null,
    skills        text[] not null default '{}',
    capacity      int not null default 3 check (capacity >= 0),
    supervisor    boolean not null default false,
    status        text not null default 'offline' check (status in ('online', 'away', 'offline')),
    status_at     timestamptz not null default now(),
    idle_since    timestamptz not null default now(),
    created_at    timestamptz not null default now()
);

-- live connections per agent per hub node; a node refreshes seen_at while it lives
create table agent_presence (
    agent_id    text not null references agents(id) on delete cascade,
    node_id     text not null,
    connections int not null default 0,
    seen_at     timestamptz not null default now(),
    primary key (agent_id, node_id)
);

create table conversations (
    id                text primary key,
    user_id           text not null references users(id),
    topic             text not null,
    priority          text not null default 'normal' check (priority in ('urgent', 'high', 'normal')),
    status            text not null check (status in ('bot', 'queued', 'assigned', 'resolved', 'closed')),
    agent_id          text references agents(id),
    previous_agent_id text references agents(id),
    excluded_agents   text[] not null default '{}',
    last_seq          bigint not null default 0,   -- seq of the newest message
    queue_position    int,                         -- last position told to the user
    user_read_seq     bigint not null default 0,
    agent_read_seq    bigint not null default 0,
    bot_state         jsonb,
    alert             jsonb,                       -- the security alert of an urgent chat
    lang              text not null default 'zh',
    created_at        timestamptz not null default now(),
    enqueued_at       timestamptz,
    assigned_at       timestamptz,
    first_response_at timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    closed_by         text,
    rating            int check (rating between 1 and 5),
    rating_comment    text,
    last_activity_at  timestamptz not null default now()
);
create index conversations_queue on conversations (priority, enqueued_at) where status = 'queued';
create index conversations_user on conversations (user_id, created_at desc);
create index conversations_agent on conversations (agent_id) where status = 'assigned';
create index conversations_status on conversations (status, created_at desc);

-- every agent who ever held a conversation (they may read it later)
create table conversation_agents (
    conversation_id text not null references conversations(id) on delete cascade,
    agent_id        text not null references agents(id) on delete cascade,
    assigned_at     timestamptz not null default now(),
    primary key (conversation_id, agent_id)
);

create table messages (
    id              text primary key,
    conversation_id text not null references conversations(id) on delete cascade,
    seq             bigint not null,
    sender_role     text not null,
    sender_id       text not null,
    sender_name     text not null,
    text            text not null,
    client_msg_id   text,
    created_at      timestamptz not null default now(),
    unique (conversation_id, seq)
);
create unique index messages_idempotency on messages (conversation_id, sender_id, client_msg_id)
    where client_msg_id is not null;

-- private notes live apart from messages so they can never leak through a message path
create table notes (
    id              text primary key,
    conversation_id text not null references conversations(id) on delete cascade,
    agent_id        text not null,
    agent_name      text not null,
    text            text not null,
    created_at      timestamptz not null default now()
);
create index notes_conversation on notes (conversation_id, created_at);

create table notifications (
    id           text primary key,
    user_id      text not null,  -- no FK: the same statement upserts the user row (saves a trigger per row)
    seq          bigint not null,
    kind         text not null,
    title        text not null,
    body         text not null,
    data         jsonb not null default '{}',
    event_id     text,    -- the payment event it came from: each is handled once, on any node
    broadcast_id bigint,  -- or the system notice it is a copy of
    created_at   timestamptz not null default now(),
    unique (user_id, seq)
);
create unique index notifications_event on notifications (event_id) where event_id is not null;
create index notifications_broadcast on notifications (broadcast_id) where broadcast_id is not null;

-- how far this hub has read the payments outbox (catch-up after downtime)
create table event_cursor (
    source   text primary key,
    after_id bigint not null default 0
);

create table broadcasts (
    id         bigserial primary key,
    title      text not null,
    body       text not null,
    data       jsonb not null default '{}',
    created_at timestamptz not null default now()
);

-- one sample a minute for the supervisor's chart
create table queue_samples (
    ts         timestamptz primary key default now(),
    queued     int not null,
    avg_wait_s double precision not null default 0
);
