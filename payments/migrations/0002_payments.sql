-- supporthub payments schema: accounts, transactions, double-entry ledger, devices,
-- the maintenance switch and the transactional outbox.

-- one payment account per user, keyed by the hub's user id
create table accounts (
    user_id       text primary key,
    name          text not null,
    balance       numeric(18, 2) not null default 0 check (balance >= 0),
    currency      text not null default 'CNY',
    frozen        boolean not null default false,
    frozen_reason text,
    frozen_at     timestamptz,
    unfrozen_at   timestamptz,   -- risk counters start again from here
    created_at    timestamptz not null default now()
);

-- every payment attempt that passed validation, refused ones included
create table transactions (
    transaction_id  text primary key,
    from_user       text not null references accounts(user_id),
    to_user         text not null,            -- may name no account (invalid_payee)
    amount          numeric(18, 2) not null check (amount > 0),
    currency        text not null default 'CNY',
    speed           text not null check (speed in ('instant', 'standard')),
    status          text not null check (status in ('processing', 'succeeded', 'failed')),
    reason          text check (reason in ('insufficient_balance', 'invalid_payee', 'maintenance',
                                           'network_error', 'account_frozen')),
    memo            text,
    idempotency_key text not null,
    created_at      timestamptz not null default now(),
    expected_by     timestamptz,
    settled_at      timestamptz,
    unique (from_user, idempotency_key),
    check ((status = 'failed') = (reason is not null))
);
create index transactions_from on transactions (from_user, created_at desc);
create index transactions_to on transactions (to_user, created_at desc);
create index transactions_due on transactions (expected_by) where status = 'processing';

-- double entry: the entries of one posting sum to zero, and an account's balance is
-- the sum of its entries. Besides user ids, `account` names two internal accounts:
-- '@clearing' (money of standard transfers in flight) and '@funding' (money entering
-- or leaving the system: opening balances, adjustments).
create table ledger_entries (
    id             bigserial primary key,
    posting_id     text not null,
    transaction_id text references transactions(transaction_id),
    account        text not null,
    amount         numeric(18, 2) not null check (amount <> 0),
    kind           text not null,  -- payment, settlement, refund, opening, adjustment
    created_at     timestamptz not null default now()
);
create index ledger_entries_account on ledger_entries (account, id);
create index ledger_entries_transaction on ledger_entries (transaction_id);

-- devices a user has signed in from (the new-device rule)
create table devices (
    user_id     text not null,
    device_id   text not null,
    device_name text,
    ip          text,
    alerted     boolean not null default false,  -- its first login raised new_device_login
    first_seen  timestamptz not null default now(),
    last_seen   timestamptz not null default now(),
    primary key (user_id, device_id)
);

-- the runtime maintenance switch (absent row = off)
create table payments_maintenance (
    id         int primary key default 1 check (id = 1),
    active     boolean not null,
    message    text,
    updated_by text,
    updated_at timestamptz not null default now()
);

-- transactional outbox: each event is written in the transaction of its state change.
-- Rows are inserted under a transaction-scoped advisory lock held until COMMIT, so ids
-- are handed out in commit order: a reader that has seen id N will never later see a
-- row with a smaller id appear (see payments/outbox.py).
create table outbox (
    id           bigserial primary key,
    event_id     text not null unique,
    type         text not null,
    user_id      text not null,
    payload      bytea not null,             -- the msgpack map published as is
    created_at   timestamptz not null default now(),
    published_at timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;
create index outbox_user_type on outbox (user_id, type, id desc);
