-- Feedback for the product team: suggestions and complaints the help bot recognised,
-- messages or chats an agent tagged as feedback, and rating comments. Each item is also
-- POSTed to HUB_FEEDBACK_WEBHOOK_URL (hub.services.feedback): `delivered_at` once the
-- receiver took it, `attempts` so far.
create table if not exists feedback (
    id              text primary key,
    kind            text not null check (kind in ('suggestion', 'complaint', 'rating', 'tagged')),
    source          text not null check (source in ('bot', 'agent', 'rating')),
    theme           text not null default 'other',
    text            text not null,
    lang            text,
    score           int,                       -- a rating's score
    conversation_id text references conversations(id) on delete cascade,
    message_id      text,                      -- the message it came from, if one
    user_id         text,
    topic           text,
    tagged_by       text,                      -- the agent who tagged it
    created_at      timestamptz not null default now(),
    delivered_at    timestamptz,
    attempts        int not null default 0
);
create index if not exists feedback_recent on feedback (created_at desc);
create index if not exists feedback_undelivered on feedback (created_at) where delivered_at is null;
-- a message is feedback once, however often it is tagged; a chat's rating comment once
create unique index if not exists feedback_message on feedback (message_id) where message_id is not null;
create unique index if not exists feedback_rating on feedback (conversation_id) where kind = 'rating';
-- a tagged chat (no message named) once
create unique index if not exists feedback_chat on feedback (conversation_id)
    where kind = 'tagged' and message_id is null;
