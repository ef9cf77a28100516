-- Events the collector refused, kept with the reason (never silently dropped).
CREATE TABLE IF NOT EXISTS dead_letters
(
    received_at   DateTime64(3, 'UTC'),
    source        LowCardinality(String),
    endpoint      LowCardinality(String),
    batch_index   Int32 COMMENT 'index in the batch, -1 for a whole request',
    message_id    String,
    customer_id   String,
    anonymous_id  String,
    reason        String,
    payload       String COMMENT 'the event as received (truncated to 64 KiB)'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, source)
SETTINGS non_replicated_deduplication_window = 1000;
