-- The urgent ladder (hub.rules.urgent): security back-ups, and each urgent chat's
-- deadline, pages and what its customer was last told.

alter table agents add column security_backup boolean not null default false;

alter table conversations
    add column urgent_since    timestamptz,  -- became urgent, or changed hands outside the ladder
    add column urgent_due_at   timestamptz,  -- the current deadline; null: urgent_since + urgent_answer_s
    add column urgent_paged_at timestamptz,  -- the last on-call page for it
    add column urgent_notice   text;         -- the notice the customer saw last (staffed, unstaffed)

create index conversations_urgent on conversations (agent_id)
    where priority = 'urgent' and status = any('{queued,assigned}'::text[]);
