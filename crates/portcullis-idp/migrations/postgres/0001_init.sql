-- Identity provider schema, version 1 (PostgreSQL). Times are Unix seconds; JSON is TEXT.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE pools (
    name       TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL
);
CREATE TABLE groups (
    pool       TEXT NOT NULL REFERENCES pools(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (pool, name)
);
CREATE TABLE users (
    pool               TEXT NOT NULL REFERENCES pools(name) ON DELETE CASCADE,
    username           TEXT NOT NULL,
    sub                TEXT NOT NULL UNIQUE,
    password_hash      TEXT,
    status             TEXT NOT NULL,
    enabled            BOOLEAN NOT NULL,
    attributes         TEXT NOT NULL,
    failed_attempts    BIGINT NOT NULL DEFAULT 0,
    locked_until       BIGINT,
    tokens_valid_after BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (pool, username)
);
CREATE TABLE user_groups (
    pool       TEXT NOT NULL,
    username   TEXT NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (pool, username, group_name),
    FOREIGN KEY (pool, username) REFERENCES users(pool, username) ON DELETE CASCADE,
    FOREIGN KEY (pool, group_name) REFERENCES groups(pool, name) ON DELETE CASCADE
);
CREATE TABLE clients (
    client_id      TEXT PRIMARY KEY,
    pool           TEXT NOT NULL REFERENCES pools(name) ON DELETE CASCADE,
    secret_hash    BYTEA,
    public         BOOLEAN NOT NULL,
    grants         TEXT NOT NULL,
    callback_urls  TEXT NOT NULL,
    logout_urls    TEXT NOT NULL,
    allowed_scopes TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX clients_pool ON clients(pool);
CREATE TABLE resource_servers (
    pool       TEXT NOT NULL REFERENCES pools(name) ON DELETE CASCADE,
    identifier TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    PRIMARY KEY (pool, identifier)
);
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    pool       TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    username   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    origin_jti TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (pool, username) REFERENCES users(pool, username) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_user ON refresh_tokens(pool, username);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at);
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    pool         TEXT NOT NULL REFERENCES pools(name) ON DELETE CASCADE,
    pkcs8        BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at   BIGINT
);
CREATE INDEX signing_keys_pool ON signing_keys(pool);
CREATE TABLE revoked_sessions (
    origin_jti TEXT PRIMARY KEY,
    pool       TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_sessions_expiry ON revoked_sessions(expires_at);
