-- Analyst depth (docs/analysts.md): attribution, sessions, paths, time between stages, cohorts.
-- Every view reads journey_contacts: the raw contact touchpoints with the customer each resolves to now
-- (identity_keys, latest version; an id nobody linked is its own customer). Touchpoints to leave out of every
-- analysis (bots, machines) are left out there, in one WHERE clause.

-- The settings the views read (REISE_ATTRIBUTION_LOOKBACK_DAYS, REISE_SESSION_GAP_MINUTES), written by
-- `reise migrate` and by the collector at start; a view uses its default while a key has no row.
CREATE TABLE IF NOT EXISTS analytics_settings
(
    key      String,
    value    Float64,
    version  UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key;

CREATE VIEW IF NOT EXISTS journey_contacts AS
SELECT
    if(k.customer_id != '', k.customer_id, t.journey_id) AS customer_id,
    t.journey_id AS journey_id,
    t.message_id AS message_id,
    t.timestamp AS timestamp,
    toString(t.type) AS type,
    t.event AS event,
    toString(t.channel) AS channel,
    t.campaign AS campaign,
    toString(t.traffic_class) AS traffic_class,
    t.stage_rank AS stage_rank,
    t.revenue AS revenue,
    t.order_id AS order_id,
    t.page_url AS page_url
FROM touchpoints AS t
LEFT JOIN
(
    SELECT journey_id, argMax(customer_id, version) AS customer_id
    FROM identity_keys
    GROUP BY journey_id
) AS k ON k.journey_id = t.journey_id
WHERE t.type IN ('track', 'page', 'screen');

-- One row per purchase, model and credited contact. A purchase's contacts: the customer's contacts strictly
-- before it and at most the lookback before it, purchases aside; with none, the purchase credits itself.
-- Its revenue is net of the customer's returns of the same order (touchpoints with its order_id and negative
-- revenue), counted on the order's first purchase touchpoint.
CREATE VIEW IF NOT EXISTS attribution_credits AS
SELECT
    customer_id,
    purchase_id,
    purchased_at,
    purchase_channel,
    purchase_campaign,
    revenue,
    contacts,
    given.1 AS model,
    given.2 AS channel,
    given.3 AS campaign,
    given.4 AS credit,
    given.4 * toFloat64(revenue) AS credited_revenue,
    if(given.5 = 0, NULL, fromUnixTimestamp64Milli(given.5, 'UTC')) AS touched_at
FROM
(
    SELECT
        customer_id,
        cs[purchase_index] AS p,
        p.2 AS purchase_id,
        fromUnixTimestamp64Milli(p.1, 'UTC') AS purchased_at,
        p.3 AS purchase_channel,
        p.4 AS purchase_campaign,
        p.7 + if(p.8 != '' AND arrayFirstIndex(c -> c.6 AND c.8 = p.8, cs) = purchase_index,
                 arraySum(arrayMap(c -> if(NOT c.6 AND c.8 = p.8 AND c.7 < 0, c.7, toDecimal64(0, 4)), cs)),
                 toDecimal64(0, 4)) AS revenue,
        arrayFilter(c -> NOT c.6 AND c.1 < p.1 AND c.1 >= p.1 - lookback_ms, cs) AS window,
        toUInt32(length(window)) AS contacts,
        arrayMap(c -> exp2(-(p.1 - c.1) / 604800000), window) AS decay,
        arraySum(decay) AS decay_sum,
        if(arrayLastIndex(c -> c.5 NOT IN ('direct', 'internal'), window) = 0, contacts,
           arrayLastIndex(c -> c.5 NOT IN ('direct', 'internal'), window)) AS non_direct,
        if(contacts = 0,
           arrayMap(m -> (m, p.3, p.4, 1., toInt64(0)),
                    ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay']),
           arrayConcat(
               [('first_touch', window[1].3, window[1].4, 1., window[1].1),
                ('last_touch', window[contacts].3, window[contacts].4, 1., window[contacts].1),
                ('last_non_direct', window[non_direct].3, window[non_direct].4, 1., window[non_direct].1)],
               arrayMap(c -> ('linear', c.3, c.4, 1. / contacts, c.1), window),
               arrayMap((c, i) -> ('position_based', c.3, c.4,
                                   multiIf(contacts = 1, 1., contacts = 2, 0.5, i = 1 OR i = contacts, 0.4,
                                           0.2 / (contacts - 2)), c.1),
                        window, arrayEnumerate(window)),
               arrayMap((c, d) -> ('time_decay', c.3, c.4, d / decay_sum, c.1), window, decay))) AS credits
    FROM
    (
        SELECT
            customer_id,
            arraySort(groupArray((toUnixTimestamp64Milli(timestamp), message_id, channel, campaign, traffic_class,
                                  stage_rank = 3, toDecimal64(revenue, 4), order_id))) AS cs,
            (SELECT if(count() = 0, 30., argMax(value, version)) FROM analytics_settings
             WHERE key = 'attribution_lookback_days') AS lookback_days,
            toInt64(lookback_days * 86400000) AS lookback_ms
        FROM journey_contacts
        GROUP BY customer_id
        HAVING countIf(stage_rank = 3) > 0
    )
    ARRAY JOIN arrayFilter(i -> cs[i].6, arrayEnumerate(cs)) AS purchase_index
)
ARRAY JOIN credits AS given;

-- One row per model, channel and campaign: the credit of every purchase, all time.
CREATE VIEW IF NOT EXISTS attribution AS
SELECT
    model,
    channel,
    campaign,
    sum(credit) AS credited_purchases,
    sum(credited_revenue) AS credited_revenue
FROM attribution_credits
GROUP BY model, channel, campaign;

-- Sessions per resolved customer across every channel: a contact at least the session gap after the
-- customer's previous contact starts a new session.
CREATE VIEW IF NOT EXISTS sessions AS
SELECT
    customer_id,
    concat(customer_id, '#', toString(number)) AS session_id,
    fromUnixTimestamp64Milli(cs[first].1, 'UTC') AS started_at,
    fromUnixTimestamp64Milli(cs[last].1, 'UTC') AS ended_at,
    toUInt32(last - first + 1) AS touchpoints,
    cs[first].3 AS entry_channel,
    cs[first].4 AS entry_campaign,
    arrayFirst(page -> page != '', arrayMap(c -> c.5, arraySlice(cs, first, last - first + 1))) AS landing_page,
    toUInt8(arrayExists(c -> c.6, arraySlice(cs, first, last - first + 1))) AS has_purchase
FROM
(
    SELECT
        customer_id,
        cs,
        arrayFilter(i -> i = 1 OR cs[i].1 - cs[i - 1].1 >= gap_ms, arrayEnumerate(cs)) AS firsts,
        arrayPushBack(arrayMap(i -> toUInt32(i - 1), arrayPopFront(firsts)), toUInt32(length(cs))) AS lasts
    FROM
    (
        SELECT
            customer_id,
            arraySort(groupArray((toUnixTimestamp64Milli(timestamp), message_id, channel, campaign, page_url,
                                  stage_rank = 3))) AS cs,
            (SELECT if(count() = 0, 30., argMax(value, version)) FROM analytics_settings
             WHERE key = 'session_gap_minutes') AS gap_minutes,
            toInt64(gap_minutes * 60000) AS gap_ms
        FROM journey_contacts
        GROUP BY customer_id
    )
)
ARRAY JOIN firsts AS first, lasts AS last, arrayEnumerate(firsts) AS number;

-- The channel and the stage sequences before each customer's first purchase (reaching the purchase stage;
-- every contact for those who never bought): consecutive repeats collapsed, the last five steps kept.
CREATE VIEW IF NOT EXISTS journey_paths AS
SELECT
    kind,
    path,
    toUInt8(length(path)) AS steps,
    count() AS customers,
    countIf(bought) AS buyers,
    buyers / customers AS conversion,
    if(buyers = 0, NULL, quantileExactIf(0.5)(days_to_purchase, bought)) AS median_days_to_purchase
FROM
(
    SELECT
        bought,
        if(bought, (purchased - cs[1].1) / 86400000, 0.) AS days_to_purchase,
        arrayFilter(c -> NOT bought OR c.1 < purchased, cs) AS before,
        [('channel', arraySlice(arrayCompact(arrayMap(c -> c.3, before)), -5)),
         ('stage', arraySlice(arrayCompact(arrayMap(c -> ['awareness', 'consideration', 'purchase', 'retention',
                                                          'advocacy'][c.4], arrayFilter(c -> c.4 > 0, before))), -5))]
            AS paths
    FROM
    (
        SELECT
            customer_id,
            arraySort(groupArray((toUnixTimestamp64Milli(timestamp), message_id, channel, stage_rank))) AS cs,
            minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 3) AS purchased,
            countIf(stage_rank >= 3) > 0 AS bought
        FROM journey_contacts
        GROUP BY customer_id
    )
)
ARRAY JOIN paths.1 AS kind, paths.2 AS path
GROUP BY kind, path;

-- For each pair of consecutive stages: the time between first reaching one and first reaching the next
-- (a stage counts as reached by a contact in it or in a later stage), over the customers who reached both.
CREATE VIEW IF NOT EXISTS stage_durations AS
SELECT
    ['awareness', 'consideration', 'purchase', 'retention'][pair.1] AS from_stage,
    ['consideration', 'purchase', 'retention', 'advocacy'][pair.1] AS to_stage,
    count() AS customers,
    quantileExact(0.5)(pair.2) AS median_seconds,
    quantileExact(0.75)(pair.2) AS p75_seconds,
    quantileExact(0.9)(pair.2) AS p90_seconds
FROM
(
    SELECT
        arrayFilter(x -> x.2 >= 0, [
            (1, if(reached_2 = 0, -1., (reached_2 - reached_1) / 1000)),
            (2, if(reached_3 = 0, -1., (reached_3 - reached_2) / 1000)),
            (3, if(reached_4 = 0, -1., (reached_4 - reached_3) / 1000)),
            (4, if(reached_5 = 0, -1., (reached_5 - reached_4) / 1000))]) AS pairs
    FROM
    (
        SELECT
            customer_id,
            minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 1) AS reached_1,
            minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 2) AS reached_2,
            minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 3) AS reached_3,
            minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 4) AS reached_4,
            minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 5) AS reached_5
        FROM journey_contacts
        GROUP BY customer_id
    )
)
ARRAY JOIN pairs AS pair
GROUP BY pair.1
ORDER BY pair.1;

-- Customers by the week (from Monday, UTC) of their first contact: the share who had reached each stage within
-- 1, 2, 4, 8 and 12 weeks of their own first contact; NULL while the cohort's youngest may not be that old yet.
CREATE VIEW IF NOT EXISTS cohorts AS
SELECT
    cohort_week,
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][rank] AS stage,
    count() AS customers,
    if(cohort_week + 14 > today(), NULL, countIf(reached[rank] != 0 AND reached[rank] - first < 604800000 * 1)
                                         / customers) AS by_week_1,
    if(cohort_week + 21 > today(), NULL, countIf(reached[rank] != 0 AND reached[rank] - first < 604800000 * 2)
                                         / customers) AS by_week_2,
    if(cohort_week + 35 > today(), NULL, countIf(reached[rank] != 0 AND reached[rank] - first < 604800000 * 4)
                                         / customers) AS by_week_4,
    if(cohort_week + 63 > today(), NULL, countIf(reached[rank] != 0 AND reached[rank] - first < 604800000 * 8)
                                         / customers) AS by_week_8,
    if(cohort_week + 91 > today(), NULL, countIf(reached[rank] != 0 AND reached[rank] - first < 604800000 * 12)
                                         / customers) AS by_week_12
FROM
(
    SELECT
        customer_id,
        min(toUnixTimestamp64Milli(timestamp)) AS first,
        toMonday(min(timestamp)) AS cohort_week,
        [minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 1), minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 2),
         minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 3), minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 4),
         minIf(toUnixTimestamp64Milli(timestamp), stage_rank >= 5)] AS reached
    FROM journey_contacts
    GROUP BY customer_id
)
ARRAY JOIN [1, 2, 3, 4, 5] AS rank
GROUP BY cohort_week, rank
ORDER BY cohort_week, rank;
