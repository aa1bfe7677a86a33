-- Push subscriptions: how to reach a user's device when no socket is open. `kind` tells
-- the provider: Web Push now (RFC 8030), FCM and APNs later.

create table push_subscriptions (
    id           text primary key,
    user_id      text not null references users(id) on delete cascade,
    kind         text not null check (kind in ('webpush', 'fcm', 'apns')),
    endpoint     text not null,               -- Web Push: the push service URL; FCM/APNs: the device token
    keys         jsonb not null default '{}', -- Web Push: {p256dh, auth} of the browser
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    last_sent_at timestamptz,
    unique (kind, endpoint)
);

create index push_subscriptions_user on push_subscriptions (user_id, updated_at desc);
