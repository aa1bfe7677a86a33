-- A notice's copies are committed in parts, each pushed to its users while the next is
-- written; `filling` marks a notice not yet given to every user known when it was sent.
-- One left so by a sender that stopped mid-way (nobody then holds the notices' lock) is
-- filled by the next notice or the sweeper. Existing notices were stored whole.
alter table broadcasts add column filling boolean not null default false;
create index broadcasts_filling on broadcasts (id) where filling;
