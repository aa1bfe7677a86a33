-- Campaigns: scheduled, targeted notices (security education, maintenance, news) with
-- their delivery, read and click counts.
--
-- A campaign is materialised in batches into `notifications` (kind `system.notice`,
-- `campaign_id` set), users in id order past `cursor`, the cursor moved in the same
-- transaction as the batch. One node runs it at a time: it holds the lease
-- (`lease_owner` until `lease_until`) and every batch re-checks it under the row lock;
-- a node that dies leaves a lease that runs out, and the next node carries on from the
-- cursor. The unique index below makes a second copy for a user impossible whatever
-- happens.
create table if not exists campaigns (
    id           bigserial primary key,
    category     text not null default 'notice',   -- 'notice', 'security' (education), 'maintenance'
    texts        jsonb not null,                   -- {"zh": {"title", "body"}, "en": {...}}
    link         text,                             -- a help article (slug or https URL)
    audience     jsonb not null,                   -- hub.rules.campaigns.Audience
    send_at      timestamptz not null,
    status       text not null default 'scheduled', -- scheduled, sending, sent, cancelled
    cursor       text not null default '',         -- last user id materialised
    delivered    bigint not null default 0,        -- copies stored
    lease_owner  text,
    lease_until  timestamptz,
    created_by   text not null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    started_at   timestamptz,
    finished_at  timestamptz
);
create index if not exists campaigns_due on campaigns (send_at) where status in ('scheduled', 'sending');

-- An uploaded list of user ids (audience kind `list`).
create table if not exists campaign_users (
    campaign_id bigint not null references campaigns (id) on delete cascade,
    user_id     text not null,
    primary key (campaign_id, user_id)
);

-- What a user did with their card: opened its link, dismissed it (once each).
create table if not exists campaign_marks (
    campaign_id  bigint not null references campaigns (id) on delete cascade,
    user_id      text not null,
    clicked_at   timestamptz,
    dismissed_at timestamptz,
    primary key (campaign_id, user_id)
);
-- a user's dismissed cards, looked up on every connect (welcome.dismissed_campaigns)
create index if not exists campaign_marks_dismissed on campaign_marks (user_id)
    where dismissed_at is not null;

alter table notifications add column if not exists campaign_id bigint;
create unique index if not exists notifications_campaign on notifications (campaign_id, user_id)
    where campaign_id is not null;
