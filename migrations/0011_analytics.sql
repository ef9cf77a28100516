-- Analyst depth (docs/analysts.md): attribution, sessions, paths, time between stages, cohorts.
-- The views read customer_state (resolved at insert, one row set per customer; docs/identity.md), so none of
-- them joins the raw touchpoints to the identity tables at query time.

-- The settings the views read (REISE_ATTRIBUTION_LOOKBACK_DAYS, REISE_SESSION_GAP_MINUTES), written by
-- `reise migrate` and by the collector at start; a view uses its default while a key has no row.
CREATE TABLE IF NOT EXISTS analytics_settings
(
    key      String,
    value    Float64,
    version  UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key
SETTINGS non_replicated_deduplication_window = 1000;

-- Every contact of a customer with what the analytics need, as one array of tuples kept in customer_state
-- (one column, so a merge of rows can never misalign it): (time, channel, campaign, stage rank, revenue,
-- order id, traffic class, page url). customer_state_mv fills it at insert, the identity resolver moves it with
-- the rest of the state, unlink recounts it and forget deletes it.
ALTER TABLE customer_state
    ADD COLUMN IF NOT EXISTS contact_details
        SimpleAggregateFunction(groupArrayArray,
                                Array(Tuple(at DateTime64(3, 'UTC'), channel String, campaign String, stage UInt8,
                                            revenue Decimal(18, 4), order_id String, traffic_class String,
                                            page_url String)))
        COMMENT 'every contact as (time, channel, campaign, stage rank, revenue, order id, traffic class, page url)';

DROP VIEW IF EXISTS customer_state_mv;

-- As in 0008, plus contact_details. The contacts counted are those of `t.contact`: touchpoints to leave out of
-- every figure (bots, machines) are left out there, in this one condition (and in its copy in
-- collector/identity/rebuild.py).
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
    groupArrayIf(t.stage_rank, t.contact) AS contact_stages,
    groupArrayIf((t.timestamp, toString(t.channel), t.campaign, t.stage_rank, t.revenue, t.order_id,
                  toString(t.traffic_class), t.page_url), t.contact) AS contact_details
FROM (SELECT *, type IN ('track', 'page', 'screen') AS contact FROM touchpoints) AS t
LEFT JOIN
(
    SELECT journey_id, argMax(customer_id, version) AS customer_id
    FROM identity_keys
    WHERE journey_id IN (SELECT journey_id FROM touchpoints)
    GROUP BY journey_id
) AS m ON m.journey_id = t.journey_id
GROUP BY customer_id;

-- The contacts stored before this migration, under the customer each resolves to now (a row of details
-- alone adds nothing to the other columns). Run it with writing paused (POST /v1/admin/writing) when
-- collectors keep inserting into a server during `reise migrate`.
INSERT INTO customer_state (customer_id, contact_details)
SELECT
    if(m.customer_id != '', m.customer_id, t.journey_id) AS customer_id,
    groupArray((t.timestamp, toString(t.channel), t.campaign, t.stage_rank, t.revenue, t.order_id,
                toString(t.traffic_class), t.page_url)) AS contact_details
FROM touchpoints AS t
LEFT JOIN
(
    SELECT journey_id, argMax(customer_id, version) AS customer_id
    FROM identity_keys
    GROUP BY journey_id
) AS m ON m.journey_id = t.journey_id
WHERE t.type IN ('track', 'page', 'screen')
GROUP BY customer_id;

-- The views below read the subcolumns of contact_details they need, merged per live customer and sorted by
-- time (contacts at the same millisecond in no defined order).

-- One row per purchase touchpoint: its net revenue, its contacts in the lookback window, and each model's
-- credits as (model, channel, campaign, credit, contact time). A purchase's contacts: the customer's contacts
-- strictly before it and at most the lookback before it, purchases aside; with none, the purchase credits its
-- own channel and campaign. Its revenue is net of the customer's returns of the same order (contacts with its
-- order id and negative revenue), counted on the order's first purchase.
CREATE VIEW IF NOT EXISTS attribution_purchases AS
SELECT customer_id, purchased_at, purchase_channel, purchase_campaign, revenue, contacts,
       arrayMap(c -> (c.1, c.2, c.3, c.4, if(c.5 = 0, NULL, fromUnixTimestamp64Milli(c.5, 'UTC'))), credits)
           AS credits
FROM
(
    SELECT
        customer_id,
        fromUnixTimestamp64Milli(ms[p], 'UTC') AS purchased_at,
        ch[p] AS purchase_channel,
        cp[p] AS purchase_campaign,
        rv[p] + if(od[p] != '' AND arrayFirstIndex((s, o) -> s = 3 AND o = od[p], st, od) = p,
                   arraySum((s, o, r) -> if(s != 3 AND o = od[p] AND r < 0, r, toDecimal64(0, 4)), st, od, rv),
                   toDecimal64(0, 4)) AS revenue,
        arrayFilter(i -> st[i] != 3 AND ms[i] < ms[p] AND ms[i] >= ms[p] - lookback_ms, arrayEnumerate(ms)) AS window,
        toUInt32(length(window)) AS contacts,
        arrayMap(i -> exp2(-(ms[p] - ms[i]) / 604800000), window) AS decay,
        arraySum(decay) AS decay_sum,
        arrayLastIndex(i -> cl[i] NOT IN ('direct', 'internal'), window) AS last_non_direct,
        window[if(last_non_direct = 0, contacts, last_non_direct)] AS non_direct,
        if(contacts = 0,
           arrayMap(m -> (m, ch[p], cp[p], 1., toInt64(0)),
                    ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay']),
           arrayConcat(
               [('first_touch', ch[window[1]], cp[window[1]], 1., ms[window[1]]),
                ('last_touch', ch[window[contacts]], cp[window[contacts]], 1., ms[window[contacts]]),
                ('last_non_direct', ch[non_direct], cp[non_direct], 1., ms[non_direct])],
               arrayMap(i -> ('linear', ch[i], cp[i], 1. / contacts, ms[i]), window),
               arrayMap((i, k) -> ('position_based', ch[i], cp[i],
                                   multiIf(contacts = 1, 1., contacts = 2, 0.5, k = 1 OR k = contacts, 0.4,
                                           0.2 / (contacts - 2)), ms[i]),
                        window, arrayEnumerate(window)),
               arrayMap((i, d) -> ('time_decay', ch[i], cp[i], d / decay_sum, ms[i]), window, decay))) AS credits
    FROM
    (
        SELECT
            customer_id,
            groupArrayArray(contact_details.at) AS at0,
            groupArrayArray(contact_details.channel) AS channel0,
            groupArrayArray(contact_details.campaign) AS campaign0,
            groupArrayArray(contact_details.stage) AS stage0,
            arraySort((i, t) -> t, arrayEnumerate(at0), at0) AS order,
            arrayMap(i -> toUnixTimestamp64Milli(at0[i]), order) AS ms,
            arrayMap(i -> channel0[i], order) AS ch,
            arrayMap(i -> campaign0[i], order) AS cp,
            arrayMap(i -> stage0[i], order) AS st,
            arrayMap(i -> revenue0[i], order) AS rv,
            arrayMap(i -> order0[i], order) AS od,
            arrayMap(i -> class0[i], order) AS cl,
            groupArrayArray(contact_details.revenue) AS revenue0,
            groupArrayArray(contact_details.order_id) AS order0,
            groupArrayArray(contact_details.traffic_class) AS class0,
            (SELECT if(count() = 0, 30., argMax(value, version)) FROM analytics_settings
             WHERE key = 'attribution_lookback_days') AS lookback_days,
            toInt64(lookback_days * 86400000) AS lookback_ms
        FROM customer_state
        GROUP BY customer_id
        HAVING max(hidden) = 0 AND sum(purchases) > 0
    )
    ARRAY JOIN arrayFilter(i -> st[i] = 3, arrayEnumerate(st)) AS p
);

-- One row per purchase, model and credited contact (attribution_purchases with its credits unrolled).
CREATE VIEW IF NOT EXISTS attribution_credits AS
SELECT
    customer_id,
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
    given.5 AS touched_at
FROM attribution_purchases
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
    fromUnixTimestamp64Milli(ms[first], 'UTC') AS started_at,
    fromUnixTimestamp64Milli(ms[last], 'UTC') AS ended_at,
    toUInt32(last - first + 1) AS touchpoints,
    ch[first] AS entry_channel,
    cp[first] AS entry_campaign,
    arrayFirst(page -> page != '', arraySlice(pg, first, last - first + 1)) AS landing_page,
    toUInt8(has(arraySlice(st, first, last - first + 1), 3)) AS has_purchase
FROM
(
    SELECT
        customer_id,
        groupArrayArray(contact_details.at) AS at0,
        groupArrayArray(contact_details.channel) AS channel0,
        groupArrayArray(contact_details.campaign) AS campaign0,
        groupArrayArray(contact_details.stage) AS stage0,
        groupArrayArray(contact_details.page_url) AS page0,
        arraySort((i, t) -> t, arrayEnumerate(at0), at0) AS order,
        arrayMap(i -> toUnixTimestamp64Milli(at0[i]), order) AS ms,
        arrayMap(i -> channel0[i], order) AS ch,
        arrayMap(i -> campaign0[i], order) AS cp,
        arrayMap(i -> stage0[i], order) AS st,
        arrayMap(i -> page0[i], order) AS pg,
        (SELECT if(count() = 0, 30., argMax(value, version)) FROM analytics_settings
         WHERE key = 'session_gap_minutes') AS gap_minutes,
        toInt64(gap_minutes * 60000) AS gap_ms,
        arrayFilter(i -> i = 1 OR ms[i] - ms[i - 1] >= gap_ms, arrayEnumerate(ms)) AS firsts,
        arrayPushBack(arrayMap(i -> toUInt32(i - 1), arrayPopFront(firsts)), toUInt32(length(ms))) AS lasts
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND length(at0) > 0
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
        groupArrayArray(contact_details.at) AS at0,
        groupArrayArray(contact_details.channel) AS channel0,
        groupArrayArray(contact_details.stage) AS stage0,
        min(reached_3) AS purchased_at,
        purchased_at IS NOT NULL AS bought,
        if(bought, (toUnixTimestamp64Milli(assumeNotNull(purchased_at)) - toUnixTimestamp64Milli(arrayMin(at0)))
                   / 86400000, 0.) AS days_to_purchase,
        arrayFilter(i -> NOT bought OR at0[i] < purchased_at, arraySort((i, t) -> t, arrayEnumerate(at0), at0))
            AS before,
        [('channel', arraySlice(arrayCompact(arrayMap(i -> channel0[i], before)), -5)),
         ('stage', arraySlice(arrayCompact(arrayMap(i -> ['awareness', 'consideration', 'purchase', 'retention',
                                                          'advocacy'][stage0[i]],
                                                    arrayFilter(i -> stage0[i] > 0, before))), -5))] AS paths
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND length(at0) > 0
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
        arrayFilter(x -> x.2 IS NOT NULL, [
            (1, (toUnixTimestamp64Milli(min(reached_2)) - toUnixTimestamp64Milli(min(reached_1))) / 1000),
            (2, (toUnixTimestamp64Milli(min(reached_3)) - toUnixTimestamp64Milli(min(reached_2))) / 1000),
            (3, (toUnixTimestamp64Milli(min(reached_4)) - toUnixTimestamp64Milli(min(reached_3))) / 1000),
            (4, (toUnixTimestamp64Milli(min(reached_5)) - toUnixTimestamp64Milli(min(reached_4))) / 1000)]) AS pairs
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0
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
    if(cohort_week + 14 > today(), NULL, countIf(reached[rank] - first < 604800000 * 1) / customers) AS by_week_1,
    if(cohort_week + 21 > today(), NULL, countIf(reached[rank] - first < 604800000 * 2) / customers) AS by_week_2,
    if(cohort_week + 35 > today(), NULL, countIf(reached[rank] - first < 604800000 * 4) / customers) AS by_week_4,
    if(cohort_week + 63 > today(), NULL, countIf(reached[rank] - first < 604800000 * 8) / customers) AS by_week_8,
    if(cohort_week + 91 > today(), NULL, countIf(reached[rank] - first < 604800000 * 12) / customers) AS by_week_12
FROM
(
    SELECT
        toUnixTimestamp64Milli(assumeNotNull(min(first_seen))) AS first,
        toMonday(assumeNotNull(min(first_seen))) AS cohort_week,
        [toUnixTimestamp64Milli(min(reached_1)), toUnixTimestamp64Milli(min(reached_2)),
         toUnixTimestamp64Milli(min(reached_3)), toUnixTimestamp64Milli(min(reached_4)),
         toUnixTimestamp64Milli(min(reached_5))] AS reached
    FROM customer_state
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND min(first_seen) IS NOT NULL
)
ARRAY JOIN [1, 2, 3, 4, 5] AS rank
GROUP BY cohort_week, rank
ORDER BY cohort_week, rank;
