-- The e-mail channel: customers write to the support address from a verified address,
-- agents' replies go back by mail (docs/protocol.md, "E-mail").

-- A user's e-mail addresses; only a verified one opens or continues a chat.
create table if not exists user_emails (
    address     text primary key,                 -- lower-cased
    user_id     text not null,
    verified    boolean not null default false,
    created_at  timestamptz not null default now()
);
create index if not exists user_emails_user on user_emails (user_id);

-- The Message-ID of the mail a message came in by or went out as (threading).
alter table messages add column if not exists mail_id text;
create index if not exists messages_mail_id on messages (mail_id) where mail_id is not null;

-- The mails that opened a conversation: the same mail again (the sending server retried
-- after a 451) continues that conversation instead of opening another.
create table if not exists mail_received (
    mail_id         text primary key,
    conversation_id text not null references conversations(id) on delete cascade,
    received_at     timestamptz not null default now()
);

-- Where an e-mail conversation's replies go (the customer's address) and its subject;
-- also set on a chat whose customer chose to be answered by e-mail (chat.leave_message).
alter table conversations add column if not exists reply_email text;
alter table conversations add column if not exists mail_subject text;

-- Mail to send: written in the same transaction as the agent's message (the trigger
-- below), so a reply is never lost between the commit and the relay; sent and retried
-- by hub.services.mail_out.
create table if not exists mail_outbox (
    id          bigserial primary key,
    message_id  text references messages(id) on delete cascade,  -- an agent's reply, or
    conversation_id text,
    to_address  text not null,
    kind        text not null default 'reply',   -- reply | notice (a generic answer)
    subject     text,                            -- notices: their own subject and body
    body        text,
    in_reply_to text,                            -- notices: the mail they answer
    mail_id     text,                            -- our Message-ID, fixed before the first try
    attempts    int not null default 0,
    next_at     timestamptz not null default now(),
    last_error  text,
    sent_at     timestamptz,
    created_at  timestamptz not null default now()
);
create index if not exists mail_outbox_due on mail_outbox (next_at) where sent_at is null;
create index if not exists mail_outbox_notices on mail_outbox (to_address, created_at)
    where kind = 'notice';

create or replace function mail_outbox_reply() returns trigger language plpgsql as $$
begin
    insert into mail_outbox (message_id, conversation_id, to_address)
    select new.id, c.id, c.reply_email from conversations c
     where c.id = new.conversation_id and c.reply_email is not null;
    return new;
end $$;

drop trigger if exists messages_mail_outbox on messages;
create trigger messages_mail_outbox after insert on messages
    for each row when (new.sender_role = 'agent') execute function mail_outbox_reply();
