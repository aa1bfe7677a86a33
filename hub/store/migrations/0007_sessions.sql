-- A disabled agent can neither sign in nor open a socket; its sockets are closed and its
-- chats requeued when it is disabled (hub.services.agent_access).

alter table agents
    add column disabled    boolean not null default false,
    add column disabled_at timestamptz;
