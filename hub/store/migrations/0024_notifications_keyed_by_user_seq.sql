-- A notification is found by its user and seq (resume, ack) or by its event (each payment
-- event is handled once), never by its id: the primary key's index on the id (128
-- random bits, one more random-key index entry per row written) goes, and (user_id, seq),
-- unique already, becomes the primary key. The ids stay as unique as they were made
-- (os.urandom, md5 of random input for a notice's copies); a lookup by id would need an
-- index again.
alter table notifications
    drop constraint notifications_pkey,
    drop constraint notifications_user_id_seq_key,
    add constraint notifications_pkey primary key (user_id, seq);
