-- One row per resolved customer: per-id states merged through the identity links at query time,
-- so a link made today also folds in yesterday's anonymous touchpoints.
CREATE VIEW IF NOT EXISTS customer_state AS
SELECT
    if(m.customer_id != '', m.customer_id, s.journey_id) AS customer_id,
    groupUniqArray(s.journey_id) AS ids,
    min(s.first_seen) AS first_seen,
    max(s.last_seen) AS last_seen,
    sum(s.contacts) AS contacts,
    sumMap(s.contacts_by_channel) AS contacts_by_channel,
    argMaxIfMerge(s.current_stage) AS current_stage_rank,
    max(s.furthest_stage) AS furthest_stage_rank,
    minOrNullIfMerge(s.reached_1) AS reached_awareness_at,
    minOrNullIfMerge(s.reached_2) AS reached_consideration_at,
    minOrNullIfMerge(s.reached_3) AS reached_purchase_at,
    minOrNullIfMerge(s.reached_4) AS reached_retention_at,
    minOrNullIfMerge(s.reached_5) AS reached_advocacy_at,
    sum(s.purchases) AS purchases,
    sum(s.revenue) AS revenue,
    -- the earliest 1000 contacts, in time order (sorting here is cheaper than keeping them sorted on insert)
    arraySlice(arraySort(arrayFlatten(groupArray(finalizeAggregation(s.contact_log)))), 1, 1000) AS contact_log
FROM journey_state AS s
LEFT JOIN identity_map AS m ON s.journey_id = m.anonymous_id
GROUP BY customer_id;

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
    if(reached_purchase_at IS NULL, NULL,
       toUInt64(arrayCount(c -> c.1 < reached_purchase_at, contact_log))) AS contacts_before_first_purchase,
    first_seen,
    last_seen,
    purchases,
    revenue,
    reached_awareness_at,
    reached_consideration_at,
    reached_purchase_at,
    reached_retention_at,
    reached_advocacy_at
FROM customer_state;

-- Per purchaser, the contacts before the first purchase; the distribution is one GROUP BY away.
CREATE VIEW IF NOT EXISTS contacts_before_purchase AS
SELECT
    customer_id,
    reached_purchase_at AS first_purchase_at,
    arrayFilter(c -> c.1 < reached_purchase_at, contact_log) AS touchpoints,
    toUInt64(length(touchpoints)) AS contacts,
    arrayMap(c -> c.2, touchpoints) AS channels_before,
    mapFromArrays(arrayDistinct(channels_before),
                  arrayMap(ch -> toUInt64(countEqual(channels_before, ch)), arrayDistinct(channels_before)))
        AS contacts_by_channel,
    touchpoints[1].2 AS first_channel,
    touchpoints[1].3 AS first_campaign,
    touchpoints[-1].2 AS last_channel,
    touchpoints[-1].3 AS last_campaign
FROM customer_state
WHERE reached_purchase_at IS NOT NULL;

-- The funnel: customers who reached at least each stage, conversion from the stage before,
-- and how many stopped at this stage (none for the last stage: nothing comes after it).
CREATE VIEW IF NOT EXISTS stage_funnel AS
SELECT
    stage,
    customers,
    if(rank = 1, NULL, customers / nullIf(previous_customers, 0)) AS conversion_from_previous,
    if(rank = 5, 0, customers - next_customers) AS dropped_here
FROM
(
    SELECT
        rank,
        stage,
        customers,
        lagInFrame(customers) OVER (ORDER BY rank ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS previous_customers,
        leadInFrame(customers) OVER (ORDER BY rank ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_customers
    FROM
    (
        SELECT
            rank,
            ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][rank] AS stage,
            reached[rank] AS customers
        FROM
        (
            SELECT [countIf(furthest_stage_rank >= 1), countIf(furthest_stage_rank >= 2),
                    countIf(furthest_stage_rank >= 3), countIf(furthest_stage_rank >= 4),
                    countIf(furthest_stage_rank >= 5)] AS reached
            FROM customer_state
        )
        ARRAY JOIN [1, 2, 3, 4, 5] AS rank
    )
)
ORDER BY rank;
