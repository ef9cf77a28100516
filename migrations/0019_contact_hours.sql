-- The overview's channel mix from contacts counted per hour at insert (bench/README.md, journey_scale.py;
-- docs/analysts.md). Same figures.
--
-- What cost time: the channel mix counts the contacts of live customers by stage and channel in the date range.
-- It read every live state row's contact arrays (times, channels, stages: 8M contacts at 1M customers), unrolled
-- them and grouped them, about a quarter of a second at 1M customers. That count does not depend on identity: a
-- contact is counted once whichever key holds it (a merged-away key's contacts are copied into its customer and
-- the key is then left out; unlink recounts the same touchpoints under other keys), so it can be kept per hour,
-- stage and channel as the touchpoints arrive, from the same touchpoints customer_state_mv counts (in the journey,
-- a contact type, a stage). The counts change only with the touchpoints in the journey: new ones (this view, once
-- per insert, deduplicated with the insert like customer_state), and forget, which writes the negative of the
-- person's live contacts before deleting their state (collector/journey/forget.py). SummingMergeTree drops a
-- group whose sum is 0.
--
-- The overview reads it when its filters allow (no channel, no campaign, since and until on whole hours: every
-- contact in the range then belongs to a selected customer); otherwise it reads the arrays as before.

CREATE TABLE IF NOT EXISTS contact_hours
(
    hour        DateTime64(3, 'UTC') COMMENT 'the start of the contacts'' hour (UTC)',
    stage_rank  UInt8,
    channel     LowCardinality(String),
    contacts    Int64 COMMENT 'contacts in the journey of this hour, stage and channel (forget writes negatives)',
    key         UInt8 DEFAULT 0 COMMENT 'the cluster layout''s sharding key: the sums are the same on any shard'
)
ENGINE = SummingMergeTree(contacts)
ORDER BY (hour, stage_rank, channel)
SETTINGS non_replicated_deduplication_window = 1000;

-- Each insert's contacts with a stage, per hour (the floor of the time in ms, also before 1970), stage and channel
-- (grouped by the LowCardinality channel as it comes: a conversion to String measured dearer per insert).
CREATE MATERIALIZED VIEW IF NOT EXISTS contact_hours_mv TO contact_hours AS
SELECT
    fromUnixTimestamp64Milli((intDiv(toUnixTimestamp64Milli(timestamp), 3600000)
                              - (toUnixTimestamp64Milli(timestamp) % 3600000 < 0)) * 3600000, 'UTC') AS hour,
    stage_rank,
    channel,
    toInt64(count()) AS contacts
FROM touchpoints
WHERE in_journey AND type IN ('track', 'page', 'screen') AND stage_rank > 0
GROUP BY hour, stage_rank, channel;

-- The contacts already stored: those of live customers (not of a key merged into another), as the channel mix
-- counted them.
INSERT INTO contact_hours (hour, stage_rank, channel, contacts)
SELECT
    fromUnixTimestamp64Milli((intDiv(toUnixTimestamp64Milli(t), 3600000) - (toUnixTimestamp64Milli(t) % 3600000 < 0))
                             * 3600000, 'UTC') AS hour,
    stage_rank,
    channel,
    toInt64(count()) AS contacts
FROM
(
    SELECT contact_times, contact_channels, contact_stages
    FROM customer_state
    WHERE hidden = 0 AND customer_id NOT IN (SELECT customer_id FROM customer_state WHERE hidden = 1)
)
ARRAY JOIN contact_times AS t, contact_channels AS channel, contact_stages AS stage_rank
WHERE stage_rank > 0
GROUP BY hour, stage_rank, channel;
