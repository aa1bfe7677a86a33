-- A campaign's counts kept as they happen, so that reading them (GET /api/campaigns/{id},
-- the supervisor's list) no longer joins every copy with its user's acknowledgement.
--
-- delivered = campaigns.delivered (the sender's batches, counted under the campaign's row
-- lock they hold anyway) + the late copies counted here; read, clicked and dismissed are
-- counted here only. Each campaign's figures are spread over 16 rows (`shard`, from the
-- user id) so that many users acknowledging at once do not queue on one row; a count is
-- the sum of its campaign's rows. No foreign key: an acknowledgement must never fail
-- because of a campaign row.
create table if not exists campaign_counts (
    campaign_id bigint not null,
    shard       smallint not null,
    delivered   bigint not null default 0,   -- late copies (users first seen afterwards)
    read        bigint not null default 0,   -- copies at or below the user's notif_acked
    clicked     bigint not null default 0,
    dismissed   bigint not null default 0,
    primary key (campaign_id, shard)
);

-- Read: a copy counts once the user's acknowledgement passes its seq. The trigger sees the
-- old and the new acknowledgement of the row it updates; concurrent acknowledgements of
-- one user queue on that row, so their ranges never overlap and each copy counts once,
-- whichever node wrote the ack. A copy always gets a seq above the acknowledgement (its
-- user's next), so it is never passed over.
create or replace function campaign_read_count() returns trigger language plpgsql as $$
begin
    insert into campaign_counts (campaign_id, shard, read)
    select n.campaign_id, hashtext(new.id) & 15, count(*)
    from notifications n
    where n.user_id = new.id and n.seq > old.notif_acked and n.seq <= new.notif_acked
      and n.campaign_id is not null
    group by n.campaign_id
    on conflict (campaign_id, shard) do update set read = campaign_counts.read + excluded.read;
    return null;
end
$$;

drop trigger if exists campaign_read_counted on users;
create trigger campaign_read_counted after update of notif_acked on users
    for each row when (new.notif_acked > old.notif_acked)
    execute function campaign_read_count();

-- What happened before this migration (the trigger's lock on users holds acknowledgements
-- back until it commits, so none is missed or counted twice).
insert into campaign_counts (campaign_id, shard, delivered, read, clicked, dismissed)
select c.id, 0,
    (select count(*) from notifications n where n.campaign_id = c.id) - c.delivered,
    (select count(*) from notifications n join users u on u.id = n.user_id
      where n.campaign_id = c.id and n.seq <= u.notif_acked),
    (select count(*) from campaign_marks m where m.campaign_id = c.id and m.clicked_at is not null),
    (select count(*) from campaign_marks m where m.campaign_id = c.id and m.dismissed_at is not null)
from campaigns c
on conflict (campaign_id, shard) do nothing;
