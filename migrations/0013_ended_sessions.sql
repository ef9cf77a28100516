-- Dashboard sessions ended on the server. A session cookie is signed (collector/edge/session.py) and names a
-- nonce (the row's key); a row here ends that session for every collector that reads this store (logout). The key '*' ends
-- every session issued before its ended_at (POST /v1/admin/sessions/revoke). Rows go once the sessions they
-- end have expired anyway.
CREATE TABLE IF NOT EXISTS ended_sessions
(
    key         String,
    ended_at    DateTime64(3, 'UTC'),
    expires_at  DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY key
TTL expires_at
SETTINGS non_replicated_deduplication_window = 1000;
