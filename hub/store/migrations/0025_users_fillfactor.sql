-- Room in each page of `users` for a new version of every row in it: a notice bumps the
-- seq and broadcast cursor of every user in one statement, and a notification write
-- bumps its users' seqs. Neither column is indexed, so with free space on the page the
-- update is HOT (no new entry in the primary key or the name search index); on a full
-- page each bumped row adds an entry to both. Applies to pages written from now on
-- (a VACUUM FULL of `users` gives every page the room at once).
alter table users set (fillfactor = 50);
