-- Per-id journey state, kept live by a materialized view over contact touchpoints.
-- Stage ranks: 1 awareness, 2 consideration, 3 purchase, 4 retention, 5 advocacy.
CREATE TABLE IF NOT EXISTS journey_state
(
    journey_id           String,
    first_seen           SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen            SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    contacts             SimpleAggregateFunction(sum, UInt64),
    contacts_by_channel  SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    current_stage        AggregateFunction(argMaxIf, UInt8, Tuple(DateTime64(3, 'UTC'), UInt8), UInt8)
        COMMENT 'stage of the latest staged touchpoint; ties go to the higher stage',
    furthest_stage       SimpleAggregateFunction(max, UInt8),
    reached_1            AggregateFunction(minOrNullIf, DateTime64(3, 'UTC'), UInt8),
    reached_2            AggregateFunction(minOrNullIf, DateTime64(3, 'UTC'), UInt8),
    reached_3            AggregateFunction(minOrNullIf, DateTime64(3, 'UTC'), UInt8),
    reached_4            AggregateFunction(minOrNullIf, DateTime64(3, 'UTC'), UInt8),
    reached_5            AggregateFunction(minOrNullIf, DateTime64(3, 'UTC'), UInt8),
    purchases            SimpleAggregateFunction(sum, UInt64),
    revenue              SimpleAggregateFunction(sum, Decimal(38, 4)),
    contact_log          AggregateFunction(groupArray(1000), Tuple(DateTime64(3, 'UTC'), String, String))
        COMMENT 'up to 1000 contacts of each insert as (time, channel, campaign); the views sort them'
)
ENGINE = AggregatingMergeTree
ORDER BY journey_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_state_mv TO journey_state AS
SELECT
    journey_id,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen,
    toUInt64(count()) AS contacts,
    sumMap(map(toString(channel), toUInt64(1))) AS contacts_by_channel,
    argMaxIfState(stage_rank, (timestamp, stage_rank), stage_rank > 0) AS current_stage,
    max(stage_rank) AS furthest_stage,
    minOrNullIfState(timestamp, stage_rank >= 1) AS reached_1,
    minOrNullIfState(timestamp, stage_rank >= 2) AS reached_2,
    minOrNullIfState(timestamp, stage_rank >= 3) AS reached_3,
    minOrNullIfState(timestamp, stage_rank >= 4) AS reached_4,
    minOrNullIfState(timestamp, stage_rank >= 5) AS reached_5,
    toUInt64(countIf(stage_rank = 3)) AS purchases,
    toDecimal128(sum(revenue), 4) AS revenue,
    groupArrayState(1000)((timestamp, toString(channel), campaign)) AS contact_log
FROM touchpoints
WHERE type IN ('track', 'page', 'screen')
GROUP BY journey_id;
