-- A batch of notifications numbered by the hub from the users' heads (migration 0031):
-- each row comes with its seq. A new type, as for 0029: the earlier ones stay for the
-- statements that used them.
create type notification_row as (
    id       text,
    user_id  text,
    kind     text,
    title    text,
    body     text,
    event_id text,
    seq      bigint
);
