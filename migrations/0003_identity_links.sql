-- Links anonymous id -> customer id, from identify, alias and any event carrying both ids.
CREATE TABLE IF NOT EXISTS identity_links
(
    anonymous_id  String,
    customer_id   String,
    linked_at     DateTime64(3, 'UTC'),
    message_id    String,
    source        LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (anonymous_id, linked_at)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_mv TO identity_links AS
SELECT anonymous_id, customer_id, timestamp AS linked_at, message_id, source
FROM touchpoints
WHERE anonymous_id != '' AND customer_id != '' AND anonymous_id != customer_id;

-- The current resolution of every linked id: the latest link wins.
CREATE VIEW IF NOT EXISTS identity_map AS
SELECT anonymous_id, argMax(customer_id, linked_at) AS customer_id, max(linked_at) AS last_linked_at
FROM identity_links
GROUP BY anonymous_id;
