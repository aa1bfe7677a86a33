-- A batch's writes of one user are numbered by the hub: `back` is how many of that user's
-- writes come after this one in the batch (0 for the last), so its seq is the user's
-- counter after the batch's bump minus `back`. The statement then needs no count per user
-- and no window over the batch sorted by user (about a tenth of PostgreSQL's CPU per
-- batch). A new type, not a new attribute of `notification_write`: nodes still running
-- the previous release keep writing with that one during a rolling upgrade.
create type numbered_notification_write as (
    id       text,
    user_id  text,
    kind     text,
    title    text,
    body     text,
    event_id text,
    back     int
);
