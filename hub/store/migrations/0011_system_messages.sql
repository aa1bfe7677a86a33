-- System messages say what happened in a machine-readable form too, so that each side can
-- word it in its own language and voice: {kind, params} (null for other messages).
alter table messages add column if not exists system jsonb;

-- Where the customer wrote from: `web` (a browser page) or `app` (a socket without Origin).
alter table conversations add column if not exists channel text;
