-- The honest queue and service levels (hub.rules.queue, hub.rules.sla).
-- What the customer was first told to expect, and what happened: the ETA's error.
alter table conversations add column if not exists eta_told_s int;
alter table conversations add column if not exists eta_told_at timestamptz;
alter table conversations add column if not exists eta_actual_s double precision;
-- The wait the customer was last told (told again when it moves by a quarter or a minute).
alter table conversations add column if not exists queue_eta_s int;
-- Whether the customer was last told someone who can help is online (null: not told yet).
alter table conversations add column if not exists queue_staffed boolean;
-- The customer chose to leave a message while nobody could help: the chat stays open.
alter table conversations add column if not exists message_left_at timestamptz;
-- The last SLA state supervisors were told of, and when (if) a target was breached.
alter table conversations add column if not exists sla_state text;
alter table conversations add column if not exists sla_kind text;
alter table conversations add column if not exists sla_breached_at timestamptz;
alter table conversations add column if not exists sla_action text;  -- rerouted | escalated
-- Each agent's rolling handle time (hub.rules.queue.handle_time_estimate), kept here so
-- that every node tells customers the same waits; refreshed when the agent ends a chat.
alter table agents add column if not exists handle_time_s double precision;
-- Handle times per agent: the recent ended chats of an agent.
create index if not exists conversations_agent_ended on conversations (agent_id, resolved_at desc)
    where status in ('resolved', 'closed');
