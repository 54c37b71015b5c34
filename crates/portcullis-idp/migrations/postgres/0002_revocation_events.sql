-- Identity provider schema, version 2 (PostgreSQL): revocations as events, so a gateway can close
-- the live connections of revocations another process made (the CLI, another node).
-- Identity values are never reused; readers page by increasing id.
CREATE TABLE revocation_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool          TEXT NOT NULL,
    kind          TEXT NOT NULL,      -- 'session' (subject = origin_jti) or 'user' (subject = sub)
    subject       TEXT NOT NULL,
    issued_before BIGINT,             -- 'user': tokens issued before this time (unix seconds)
    writer        TEXT NOT NULL,      -- the process that wrote it (random per process)
    created_at    BIGINT NOT NULL
);
CREATE INDEX revocation_events_created ON revocation_events(created_at);
