-- Routing passes are numbered in the order they hold the cluster's routing lock (one
-- decider at a time), so in commit order across every node. A queued chat keeps the
-- number of the pass that last told its customer a place (or gave it to an agent): a
-- device drops a place from an older pass that reaches it late (docs/protocol.md, "The
-- queue").
create sequence if not exists routing_passes;
alter table conversations add column if not exists queue_seq bigint;
