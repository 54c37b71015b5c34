-- Identity provider schema, version 2 (SQLite): revocations as events, so a gateway can close the
-- live connections of revocations another process made (the CLI, another node).
-- AUTOINCREMENT: ids are never reused, even after the newest rows were pruned, so a reader's
-- "after id N" cursor stays valid.
CREATE TABLE revocation_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    pool          TEXT NOT NULL,
    kind          TEXT NOT NULL,      -- 'session' (subject = origin_jti) or 'user' (subject = sub)
    subject       TEXT NOT NULL,
    issued_before INTEGER,            -- 'user': tokens issued before this time (unix seconds)
    writer        TEXT NOT NULL,      -- the process that wrote it (random per process)
    created_at    INTEGER NOT NULL
);
CREATE INDEX revocation_events_created ON revocation_events(created_at);
