-- Raw touchpoints: one row per accepted event, hot fields typed, the rest in maps.
CREATE TABLE IF NOT EXISTS touchpoints
(
    message_id          String,
    type                LowCardinality(String),
    event               String,
    journey_id          String COMMENT 'customer_id when known, else anonymous_id: the key of journey_state',
    customer_id         String,
    anonymous_id        String,
    channel             LowCardinality(String),
    stage               LowCardinality(String),
    stage_rank          UInt8 COMMENT '0 none, 1 awareness .. 5 advocacy',
    timestamp           DateTime64(3, 'UTC') COMMENT 'event time corrected for client clock skew',
    original_timestamp  DateTime64(3, 'UTC') COMMENT 'event time as the client sent it',
    sent_at             Nullable(DateTime64(3, 'UTC')),
    received_at         DateTime64(3, 'UTC'),
    revenue             Decimal(18, 4),
    currency            LowCardinality(String),
    campaign            String,
    utm_source          LowCardinality(String),
    utm_medium          LowCardinality(String),
    utm_campaign        String,
    utm_term            String,
    utm_content         String,
    store_id            LowCardinality(String),
    order_id            String,
    source              LowCardinality(String) COMMENT 'the write key source that sent the event',
    page_url            String,
    referrer            String,
    ip                  String,
    user_agent          String,
    library             LowCardinality(String),
    properties          Map(LowCardinality(String), String),
    traits              Map(LowCardinality(String), String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (journey_id, timestamp, message_id)
SETTINGS non_replicated_deduplication_window = 1000;
