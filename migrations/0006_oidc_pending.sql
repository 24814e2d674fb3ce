-- Lifeboat catalog, version 6: OIDC sign-ins between the redirect to the
-- provider and its answer, kept in the catalog so that the answer may reach
-- any replica. Each is used once and lives ten minutes; the state's SHA-256
-- is the key, so a copy of the database cannot finish someone's sign-in.

CREATE TABLE oidc_pending (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    -- The PKCE code verifier.
    verifier TEXT NOT NULL,
    -- Where the browser goes once signed in.
    next TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
