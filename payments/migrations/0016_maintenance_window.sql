-- A maintenance window: when it starts (null: at once), when it is expected to end (said
-- to customers; the switch is still turned off by hand, and that end is announced), and
-- what it pauses (`instant`, `standard`; empty: every payment).
alter table payments_maintenance add column if not exists starts_at timestamptz;
alter table payments_maintenance add column if not exists expected_end timestamptz;
alter table payments_maintenance add column if not exists functions text[] not null default '{}';

-- A payment refused for maintenance keeps the window's expected end it was told.
alter table transactions add column if not exists maintenance_until timestamptz;
