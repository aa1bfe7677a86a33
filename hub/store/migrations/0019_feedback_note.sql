-- The agent's own words on a tagged message or chat, kept apart from the text (which, for
-- a message, stays the message's text with the note after it, as before).
alter table feedback add column if not exists note text;

-- A chat tagged as a whole is one item whatever its note reads as: `kind` may be
-- `suggestion` or `complaint`, so the old index (kind 'tagged' only) let a second tag of
-- the chat through. Later copies made that way go; the first stays.
delete from feedback f where f.source = 'agent' and f.message_id is null
    and exists (select 1 from feedback g where g.conversation_id = f.conversation_id
                and g.source = 'agent' and g.message_id is null
                and (g.created_at, g.id) < (f.created_at, f.id));
drop index if exists feedback_chat;
create unique index if not exists feedback_chat_tag on feedback (conversation_id)
    where source = 'agent' and message_id is null;
-- what the console shows as tagged in a chat
create index if not exists feedback_conversation on feedback (conversation_id)
    where source = 'agent';
