-- Journey at scale: one row set per resolved customer, kept live at insert time (see docs/identity.md).
-- The per-id state and the query-time merge it needed are replaced; the views keep their names.
DROP VIEW IF EXISTS stage_funnel;
DROP VIEW IF EXISTS contacts_before_purchase;
DROP VIEW IF EXISTS customer_journey;
DROP VIEW IF EXISTS customer_state;
DROP VIEW IF EXISTS identity_map;
DROP VIEW IF EXISTS journey_state_mv;
DROP TABLE IF EXISTS journey_state;
DROP VIEW IF EXISTS identity_links_mv;

-- identity_links now holds the links the collector's identity resolver accepted (after the guards);
-- an unlinked id's links are deleted and the unlink is recorded here.
CREATE TABLE IF NOT EXISTS identity_unlinks
(
    id           String,
    customer_id  String COMMENT 'the customer the id was split from',
    unlinked_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (id, unlinked_at)
SETTINGS non_replicated_deduplication_window = 1000;

-- Every id that belongs to a customer under another id: id -> the customer's key (latest version wins).
-- Named journey_id so a cluster shards it like the touchpoints it resolves.
CREATE TABLE IF NOT EXISTS identity_keys
(
    journey_id   String,
    customer_id  String,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY journey_id
SETTINGS non_replicated_deduplication_window = 1000;

-- The analysts' view of it: every id that belongs to another id's customer, and that customer.
CREATE VIEW IF NOT EXISTS identity_map AS
SELECT journey_id AS anonymous_id, argMax(customer_id, version) AS customer_id
FROM identity_keys
GROUP BY journey_id
HAVING customer_id != anonymous_id;

-- The reverse index: a customer's key -> its ids (active 0 once an id moved away or was unlinked).
CREATE TABLE IF NOT EXISTS identity_members
(
    customer_id  String,
    member_id    String,
    version      UInt64,
    active       UInt8
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (customer_id, member_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Per resolved customer: rows merge as parts merge; a key moved into another customer is hidden.
-- Stage ranks: 1 awareness, 2 consideration, 3 purchase, 4 retention, 5 advocacy.
CREATE TABLE IF NOT EXISTS customer_state
(
    customer_id          String,
    hidden               SimpleAggregateFunction(max, UInt8) COMMENT '1 once this key was merged into another customer',
    ids                  SimpleAggregateFunction(groupUniqArrayArray, Array(String))
        COMMENT 'the ids whose touchpoints are here, and every id the identity resolver mapped to this key',
    first_seen           SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    last_seen            SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    contacts             SimpleAggregateFunction(sum, UInt64),
    contacts_by_channel  SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    stage_key            SimpleAggregateFunction(max, UInt64)
        COMMENT 'time (ms) * 8 + stage rank of the latest staged contact: ties go to the higher stage',
    furthest_stage       SimpleAggregateFunction(max, UInt8),
    reached_1            SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    reached_2            SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    reached_3            SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    reached_4            SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    reached_5            SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    purchases            SimpleAggregateFunction(sum, UInt64),
    revenue              SimpleAggregateFunction(sum, Decimal(38, 4)),
    contact_times        SimpleAggregateFunction(groupArrayArray, Array(DateTime64(3, 'UTC')))
        COMMENT 'every contact: its time, channel, campaign and stage rank in four aligned arrays, unsorted',
    contact_channels     SimpleAggregateFunction(groupArrayArray, Array(String)),
    contact_campaigns    SimpleAggregateFunction(groupArrayArray, Array(String)),
    contact_stages       SimpleAggregateFunction(groupArrayArray, Array(UInt8))
)
ENGINE = AggregatingMergeTree
ORDER BY customer_id
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 1000;

-- Each insert's touchpoints, resolved through the identity map of their own ids (a primary-key read).
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_state_mv TO customer_state AS
SELECT
    if(m.customer_id != '', m.customer_id, t.journey_id) AS customer_id,
    toUInt8(0) AS hidden,
    groupUniqArray(t.journey_id) AS ids,
    minOrNullIf(t.timestamp, t.contact) AS first_seen,
    maxOrNullIf(t.timestamp, t.contact) AS last_seen,
    toUInt64(countIf(t.contact)) AS contacts,
    sumMapIf(map(toString(t.channel), toUInt64(1)), t.contact) AS contacts_by_channel,
    maxIf(toUInt64(toUnixTimestamp64Milli(t.timestamp)) * 8 + t.stage_rank, t.contact AND t.stage_rank > 0) AS stage_key,
    maxIf(t.stage_rank, t.contact) AS furthest_stage,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 1) AS reached_1,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 2) AS reached_2,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 3) AS reached_3,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 4) AS reached_4,
    minOrNullIf(t.timestamp, t.contact AND t.stage_rank >= 5) AS reached_5,
    toUInt64(countIf(t.contact AND t.stage_rank = 3)) AS purchases,
    toDecimal128(sumIf(t.revenue, t.contact), 4) AS revenue,
    groupArrayIf(t.timestamp, t.contact) AS contact_times,
    groupArrayIf(toString(t.channel), t.contact) AS contact_channels,
    groupArrayIf(t.campaign, t.contact) AS contact_campaigns,
    groupArrayIf(t.stage_rank, t.contact) AS contact_stages
FROM (SELECT *, type IN ('track', 'page', 'screen') AS contact FROM touchpoints) AS t
LEFT JOIN
(
    SELECT journey_id, argMax(customer_id, version) AS customer_id
    FROM identity_keys
    WHERE journey_id IN (SELECT journey_id FROM touchpoints)
    GROUP BY journey_id
) AS m ON m.journey_id = t.journey_id
GROUP BY customer_id;

-- One row per customer: the merged state of every live key.
CREATE VIEW IF NOT EXISTS customer_journey AS
SELECT
    customer_id,
    ids,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][current_stage_rank + 1] AS current_stage,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][furthest_stage_rank + 1] AS furthest_stage,
    current_stage_rank,
    furthest_stage_rank,
    contacts,
    contacts_by_channel,
    contacts_before_first_purchase,
    first_seen,
    last_seen,
    purchases,
    revenue,
    reached_awareness_at,
    reached_consideration_at,
    reached_purchase_at,
    reached_retention_at,
    reached_advocacy_at
FROM
(
    SELECT
        customer_id,
        max(hidden) AS is_hidden,
        arraySort(groupUniqArrayArray(ids)) AS ids,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        sum(contacts) AS contacts,
        sumMap(contacts_by_channel) AS contacts_by_channel,
        toUInt8(max(stage_key) % 8) AS current_stage_rank,
        max(furthest_stage) AS furthest_stage_rank,
        min(reached_1) AS reached_awareness_at,
        min(reached_2) AS reached_consideration_at,
        min(reached_3) AS reached_purchase_at,
        min(reached_4) AS reached_retention_at,
        min(reached_5) AS reached_advocacy_at,
        sum(purchases) AS purchases,
        sum(revenue) AS revenue,
        if(reached_purchase_at IS NULL, NULL,
           toUInt64(arraySum(times -> arrayCount(t -> t < reached_purchase_at, times), groupArray(contact_times))))
            AS contacts_before_first_purchase
    FROM customer_state
    GROUP BY customer_id
)
WHERE is_hidden = 0;

-- One customer by any of their ids: SELECT * FROM customer_journey_of(id = 'x').
CREATE VIEW IF NOT EXISTS customer_journey_of AS
SELECT *
FROM customer_journey
WHERE customer_id IN (
    SELECT if(count() = 0, {id:String}, argMax(customer_id, version))
    FROM identity_keys
    WHERE journey_id = {id:String}
);

-- Per purchaser, the contacts before the first purchase in time order; the distribution is one GROUP BY away.
CREATE VIEW IF NOT EXISTS contacts_before_purchase AS
SELECT
    customer_id,
    first_purchase_at,
    touchpoints,
    contacts,
    arrayMap(c -> c.2, touchpoints) AS channels_before,
    mapFromArrays(arrayDistinct(channels_before),
                  arrayMap(ch -> toUInt64(countEqual(channels_before, ch)), arrayDistinct(channels_before)))
        AS contacts_by_channel,
    touchpoints[1].2 AS first_channel,
    touchpoints[1].3 AS first_campaign,
    touchpoints[-1].2 AS last_channel,
    touchpoints[-1].3 AS last_campaign
FROM
(
    SELECT
        customer_id,
        max(hidden) AS is_hidden,
        min(reached_3) AS first_purchase_at,
        toUInt64(arraySum(times -> arrayCount(t -> t < first_purchase_at, times), groupArray(contact_times)))
            AS contacts,
        arraySort(arrayFilter(c -> c.1 < first_purchase_at,
                              arrayZip(groupArrayArray(contact_times), groupArrayArray(contact_channels),
                                       groupArrayArray(contact_campaigns)))) AS touchpoints
    FROM customer_state
    GROUP BY customer_id
    HAVING is_hidden = 0 AND first_purchase_at IS NOT NULL
);

-- The funnel: customers who reached at least each stage, conversion from the stage before,
-- and how many stopped at this stage (none for the last stage: nothing comes after it).
CREATE VIEW IF NOT EXISTS stage_funnel AS
SELECT
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][rank] AS stage,
    reached[rank] AS customers,
    if(rank = 1, NULL, customers / nullIf(reached[rank - 1], 0)) AS conversion_from_previous,
    if(rank = 5, 0, customers - reached[rank + 1]) AS dropped_here
FROM
(
    SELECT [countIf(furthest >= 1), countIf(furthest >= 2), countIf(furthest >= 3), countIf(furthest >= 4),
            countIf(furthest >= 5)] AS reached
    FROM
    (
        SELECT customer_id, max(furthest_stage) AS furthest, max(hidden) AS is_hidden
        FROM customer_state
        GROUP BY customer_id
        HAVING is_hidden = 0
    )
)
ARRAY JOIN [1, 2, 3, 4, 5] AS rank
ORDER BY rank;
