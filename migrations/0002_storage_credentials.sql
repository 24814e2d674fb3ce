-- Lifeboat catalog, version 2: storage locations added through the API.
-- Their static S3 credentials live here, apart from `storage_locations.config`
-- (which the API shows): no query behind an API response reads this table.
-- Protect the catalog database as you would a Kubernetes Secret.

CREATE TABLE storage_credentials (
    location          TEXT PRIMARY KEY REFERENCES storage_locations (name),
    access_key_id     TEXT NOT NULL,
    secret_access_key TEXT NOT NULL
);
