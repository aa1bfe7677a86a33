-- One notification of a batch as the notifications' write receives it: the batch is one
-- array of these rows (the text columns; the data come as one jsonb array), not an array
-- per column. The client then checks and frames one element per notification instead of
-- one per column and notification.
create type notification_write as (
    id       text,
    user_id  text,
    kind     text,
    title    text,
    body     text,
    event_id text
);
