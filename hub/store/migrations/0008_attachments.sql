-- Files in chats (POST /api/attachments) and which message carries which.

create table attachments (
    id              text primary key,
    conversation_id text not null references conversations(id) on delete cascade,
    uploader_role   text not null,
    uploader_id     text not null,
    name            text not null,       -- sanitised and masked
    content_type    text not null,       -- by content: image/png, image/jpeg, image/webp, image/gif, application/pdf
    size            bigint not null,     -- of the stored (re-encoded) file
    sha256          text not null,       -- of the stored file
    width           int,
    height          int,
    thumbnail_size  bigint,              -- null: no thumbnail (a PDF)
    created_at      timestamptz not null default now()
);
create index attachments_conversation on attachments (conversation_id, created_at);

-- written in the same transaction as the message (the group commit)
create table message_attachments (
    message_id    text not null references messages(id) on delete cascade,
    position      int not null,
    attachment_id text not null references attachments(id) on delete cascade,
    primary key (message_id, position)
);
create index message_attachments_attachment on message_attachments (attachment_id);
