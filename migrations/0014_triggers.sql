-- Triggers and segments (docs/triggers.md): every delivery attempt of a webhook, and segment membership.

-- One row per attempt to deliver a trigger's webhook (delivered, retried, parked or refused).
CREATE TABLE IF NOT EXISTS trigger_attempts
(
    trigger          String COMMENT 'the trigger''s name in REISE_TRIGGERS',
    idempotency_key  String COMMENT 'the transition''s key, the same in every attempt and every duplicate',
    customer_id      String,
    attempt          UInt16 COMMENT '1 for the first attempt',
    status           UInt16 COMMENT 'the destination''s HTTP status, 0 when it did not answer',
    outcome          LowCardinality(String) COMMENT 'delivered, retry, parked or refused',
    latency_ms       Float64 COMMENT 'time of this request',
    since_queued_ms  Float64 COMMENT 'from the transition''s entry in the outbox to the end of this attempt',
    error            String,
    destination      String COMMENT 'host:port of the destination',
    attempted_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (trigger, attempted_at, idempotency_key)
SETTINGS non_replicated_deduplication_window = 1000;

-- Entering and leaving segments; reason 'merge' when identity links moved a member to another customer key.
CREATE TABLE IF NOT EXISTS segment_changes
(
    segment      String,
    customer_id  String,
    change       LowCardinality(String) COMMENT 'enter or leave',
    reason       LowCardinality(String) COMMENT 'condition (the customer''s journey changed, or time passed) or merge',
    at           DateTime64(3, 'UTC'),
    seq          UInt64 COMMENT 'order of the changes (the later change of a customer wins)'
)
ENGINE = MergeTree
ORDER BY (segment, customer_id, seq)
SETTINGS non_replicated_deduplication_window = 1000;

-- The segments' definitions as the collector loaded them (latest wins).
CREATE TABLE IF NOT EXISTS segment_definitions
(
    key          String COMMENT 'the segment''s name',
    definition   String COMMENT 'the condition, as JSON',
    defined_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(defined_at)
ORDER BY key
SETTINGS non_replicated_deduplication_window = 1000;

-- Live membership: a customer is in a segment when their latest change for it is 'enter'.
CREATE VIEW IF NOT EXISTS segment_members AS
SELECT segment, customer_id, entered_at
FROM
(
    SELECT segment, customer_id, argMax(change, seq) AS last_change, max(at) AS entered_at
    FROM segment_changes
    GROUP BY segment, customer_id
)
WHERE last_change = 'enter';
