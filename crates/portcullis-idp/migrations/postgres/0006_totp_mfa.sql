-- TOTP software-token MFA: each user's authenticator secret (sealed by the identity provider
-- under a key derived from the store's pepper, never in the clear), its settings, the last time
-- step spent (a code is used once, on every node), and the failure count of wrong codes (counted
-- and locked out like passwords, with a version for compare-and-swap).
CREATE TABLE user_mfa (
    pool           TEXT NOT NULL,
    username       TEXT NOT NULL,
    secret         BYTEA,               -- sealed, verified secret; NULL = none
    pending_secret BYTEA,               -- sealed secret associated but not verified yet
    enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    preferred      BOOLEAN NOT NULL DEFAULT FALSE,
    last_step      BIGINT NOT NULL DEFAULT -1,
    failures       BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT,
    changed_at     BIGINT NOT NULL DEFAULT 0,
    version        BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (pool, username),
    FOREIGN KEY (pool, username) REFERENCES users(pool, username) ON DELETE CASCADE
);

-- Challenge sessions of MFA sign-ins (SOFTWARE_TOKEN_MFA, MFA_SETUP), by the SHA-256 of the
-- Session string, with their wrong answers (bounded per session) and, for MFA_SETUP, whether a
-- token was verified with the session.
CREATE TABLE mfa_sessions (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_hash BYTEA NOT NULL UNIQUE,
    pool         TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    username     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    failures     BIGINT NOT NULL DEFAULT 0,
    verified     BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX mfa_sessions_expiry ON mfa_sessions(expires_at);
