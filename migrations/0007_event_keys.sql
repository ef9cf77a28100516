-- The idempotency key of every stored touchpoint (collector/protocol.py dedup_key: the order key for
-- order events, else the messageId), kept by a view in the same insert. The collector looks keys up
-- here before it accepts an import, so importing a file again adds nothing, also after a restart and
-- for files larger than the in-memory window. Keys only, no customer id: forgetting a person finds their
-- keys through their touchpoints and deletes them (collector/journey/forget.py); `forget --suppress`
-- keeps a re-import of their events out (0009_suppression).
CREATE TABLE IF NOT EXISTS event_keys
(
    key          String,
    received_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY key
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_keys_mv TO event_keys AS
SELECT
    if(type = 'track' AND order_id != '', concat('order', '\x1F', source, '\x1F', order_id, '\x1F', lowerUTF8(event), '\x1F', properties['return_id']), message_id) AS key,
    received_at
FROM touchpoints;
