-- Identity provider schema, version 3 (SQLite): what waits between two requests of a sign-in, so
-- that each step may land on another gateway node sharing the store. Secrets are kept as hashes
-- (SHA-256 of ids, codes and sessions; HMAC of confirmation codes). Every table has an expiry
-- column with an index, so expired rows are pruned in bounded batches, and a `seq` that orders
-- rows by insertion and names them for those batches.

-- Pending sign-in requests of the hosted page (`/oauth2/authorize` → the login form).
CREATE TABLE pending_requests (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id_hash    BLOB NOT NULL UNIQUE,   -- SHA-256 of the id the form carries
    pool       TEXT NOT NULL,
    holder     TEXT NOT NULL,          -- the client address key ('' = not known: no cap)
    body       TEXT NOT NULL,          -- the validated request (JSON)
    expires_at INTEGER NOT NULL
);
CREATE INDEX pending_requests_holder ON pending_requests(pool, holder);
CREATE INDEX pending_requests_expiry ON pending_requests(expires_at);

-- One-time authorization codes; a used code stays until it expires so a replay is recognised.
CREATE TABLE authorization_codes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash  BLOB NOT NULL UNIQUE,   -- SHA-256 of the code
    pool       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    body       TEXT NOT NULL,          -- what the code was issued for (JSON)
    expires_at INTEGER NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    replayed   BOOLEAN NOT NULL DEFAULT FALSE,
    issued     BLOB                    -- SHA-256 of the refresh token the redemption issued
);
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);

-- Challenge sessions of the Cognito JSON API (NEW_PASSWORD_REQUIRED).
CREATE TABLE challenge_sessions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_hash BLOB NOT NULL UNIQUE, -- SHA-256 of the Session string
    pool         TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    username     TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX challenge_sessions_expiry ON challenge_sessions(expires_at);

-- Confirmation and reset codes of the Cognito JSON API: one row per user name and purpose,
-- with the pending code's HMAC, its attempts, the issue and failure windows and the lock.
CREATE TABLE confirmation_codes (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    pool            TEXT NOT NULL,
    username        TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    mac             BLOB,              -- HMAC of the pending code; NULL = none pending
    code_expires_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    origin          TEXT,              -- client address key the pending code was issued to
    issued_count    INTEGER NOT NULL,
    issued_since    INTEGER NOT NULL,
    failures_count  INTEGER NOT NULL,
    failures_since  INTEGER NOT NULL,
    locked_until    INTEGER NOT NULL,
    touched         INTEGER NOT NULL,  -- use order within the pool (least recently used first)
    expires_at      INTEGER NOT NULL,  -- from then on the row carries nothing
    version         INTEGER NOT NULL,  -- compare-and-swap of concurrent updates
    UNIQUE (pool, username, purpose)
);
CREATE INDEX confirmation_codes_origin ON confirmation_codes(pool, origin);
CREATE INDEX confirmation_codes_touched ON confirmation_codes(pool, touched);
CREATE INDEX confirmation_codes_expiry ON confirmation_codes(expires_at);

-- Failed sign-ins of user names a pool does not have, counted like real users' (so they lock
-- out alike on every node, and lockouts do not tell known names from unknown ones).
CREATE TABLE unknown_name_lockouts (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    pool         TEXT NOT NULL,
    name_hash    BLOB NOT NULL,         -- SHA-256 of the user name
    failures     INTEGER NOT NULL,
    locked_until INTEGER,
    changed_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,         -- from then on the failures are forgotten
    version      INTEGER NOT NULL,
    UNIQUE (pool, name_hash)
);
CREATE INDEX unknown_name_lockouts_changed ON unknown_name_lockouts(pool, changed_at);
CREATE INDEX unknown_name_lockouts_expiry ON unknown_name_lockouts(expires_at);

-- At most one current (unretired) signing key per pool, so nodes starting at once agree on it.
UPDATE signing_keys SET retired_at = activates_at
WHERE retired_at IS NULL AND kid NOT IN (
    SELECT k.kid FROM signing_keys k WHERE k.retired_at IS NULL AND k.pool = signing_keys.pool
    ORDER BY k.activates_at DESC, k.created_at DESC, k.kid DESC LIMIT 1
);
CREATE UNIQUE INDEX signing_keys_current ON signing_keys(pool) WHERE retired_at IS NULL;
