-- The analytics views of 0011, same names, columns and results, rewritten for speed (bench/README.md,
-- analytics_scale.py). What cost time, and what replaces it:
-- * GROUP BY customer_id merging every customer's contact arrays (groupArrayArray) although nearly every
--   customer has one row once parts are merged: the views now read a customer that has one row as it is
--   (no aggregation) and merge only the customers with several rows (a set of their keys, built from the key
--   column alone). Keys merged into another customer stay out (hidden) as before.
-- * Lambdas that looked contacts up by index (arrayMap(i -> channels[i], ...)) copy the whole array for every
--   element (quadratic per customer): the contacts are now sorted once as tuples and every per-contact step
--   works element-wise (arrayFilter with a mask, arrayDifference, arrayCumSum, arrayReverseFill).
-- * attribution unrolled 3 + 3 x contacts tuples of strings per purchase before grouping: it now sums each
--   model's credit per credited contact (one row per contact in a purchase's window) and unrolls the models
--   on the grouped result.
-- * Contacts at the same millisecond stay in no defined order (attribution and paths now sort them by their other
--   fields, sessions by their position).

-- The settings the views read, as in 0011 (a view uses its default while a key has no row).

-- Each live customer's contacts (customer_state's contact_details, unsorted) with their purchases and first
-- purchase: a customer with one row is read as it is, only the customers with several rows are merged (a set of
-- their keys, built from the key column alone); merged-away keys (hidden) stay out. attribution_windows, sessions
-- and journey_paths read it; a question reads only the columns it names.
CREATE OR REPLACE VIEW customer_contacts AS
SELECT customer_id, toUInt64(customer_state.purchases) AS purchases,
       CAST(reached_3, 'Nullable(DateTime64(3, \'UTC\'))') AS purchased_at, contact_details.at AS at,
       contact_details.channel AS channel, contact_details.campaign AS campaign, contact_details.stage AS stage,
       contact_details.revenue AS revenue, contact_details.order_id AS order_id,
       contact_details.traffic_class AS traffic_class, contact_details.page_url AS page_url
FROM customer_state
WHERE hidden = 0  -- with what a question filters on (purchases), moved to PREWHERE by the engine
  AND customer_id NOT IN (SELECT customer_id FROM customer_state GROUP BY customer_id HAVING count() > 1)
UNION ALL
SELECT customer_id, sum(purchases), min(reached_3), groupArrayArray(contact_details.at),
       groupArrayArray(contact_details.channel), groupArrayArray(contact_details.campaign),
       groupArrayArray(contact_details.stage), groupArrayArray(contact_details.revenue),
       groupArrayArray(contact_details.order_id), groupArrayArray(contact_details.traffic_class),
       groupArrayArray(contact_details.page_url)
FROM customer_state
WHERE customer_id IN (SELECT customer_id FROM customer_state GROUP BY customer_id HAVING count() > 1)
GROUP BY customer_id
HAVING max(hidden) = 0;

-- One row per purchase touchpoint with its contacts in the lookback window (sorted by time) and what each model
-- needs: the window's channels, campaigns and times, each contact's time-decay weight and the position of the
-- last non-direct contact. attribution_purchases, attribution_credits and attribution read it.
CREATE OR REPLACE VIEW attribution_windows AS
SELECT
    customer_id,
    purchased_at,
    purchase_channel,
    purchase_campaign,
    revenue,
    contacts,
    channels,
    campaigns,
    times,
    decay,
    non_direct
FROM
(
    SELECT
        customer_id,
        ms[p] AS purchased_ms,
        od[p] AS purchase_order,
        sorted.1[p] AS purchased_at,
        ch[p] AS purchase_channel,
        cp[p] AS purchase_campaign,
        rv[p] + if(purchase_order != '' AND arrayFirstIndex((s, o) -> s = 3 AND o = purchase_order, st, od) = p,
                   arraySum((s, o, r) -> if(s != 3 AND o = purchase_order AND r < 0, r, toDecimal64(0, 4)),
                            st, od, rv),
                   toDecimal64(0, 4)) AS revenue,
        arrayMap((s, t) -> s != 3 AND t < purchased_ms AND t >= purchased_ms - lookback_ms, st, ms) AS in_window,
        arrayFilter((x, w) -> w, ch, in_window) AS channels,
        arrayFilter((x, w) -> w, cp, in_window) AS campaigns,
        arrayFilter((x, w) -> w, sorted.1, in_window) AS times,
        toUInt32(length(channels)) AS contacts,
        arrayMap(t -> exp2(-(purchased_ms - t) / 604800000), arrayFilter((x, w) -> w, ms, in_window)) AS decay,
        arrayLastIndex((x, w) -> w AND x NOT IN ('direct', 'internal'), cl, in_window) AS last_non_direct,
        toUInt32(if(last_non_direct = 0, contacts, arrayCount(arraySlice(in_window, 1, last_non_direct))))
            AS non_direct
    FROM
    (
        SELECT
            customer_id,
            arraySort(arrayZip(at, channel, campaign, stage, revenue, order_id, traffic_class)) AS sorted,
            arrayMap(t -> toUnixTimestamp64Milli(t), sorted.1) AS ms,
            sorted.2 AS ch,
            sorted.3 AS cp,
            sorted.4 AS st,
            sorted.5 AS rv,
            sorted.6 AS od,
            sorted.7 AS cl,
            (SELECT if(count() = 0, 30., argMax(value, version)) FROM analytics_settings
             WHERE key = 'attribution_lookback_days') AS lookback_days,
            toInt64(ifNull(lookback_days, 30.) * 86400000) AS lookback_ms
        FROM customer_contacts
        WHERE purchases > 0
    )
    ARRAY JOIN arrayFilter((i, s) -> s = 3, arrayEnumerate(st), st) AS p
);

-- As in 0011: one row per purchase touchpoint with each model's credits.
CREATE OR REPLACE VIEW attribution_purchases AS
SELECT
    customer_id,
    purchased_at,
    purchase_channel,
    purchase_campaign,
    revenue,
    contacts,
    if(contacts = 0,
       arrayMap(m -> (m, purchase_channel, purchase_campaign, 1., CAST(NULL, 'Nullable(DateTime64(3, \'UTC\'))')),
                ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay']),
       arrayConcat(
           [('first_touch', channels[1], campaigns[1], 1., toNullable(times[1])),
            ('last_touch', channels[contacts], campaigns[contacts], 1., toNullable(times[contacts])),
            ('last_non_direct', channels[non_direct], campaigns[non_direct], 1., toNullable(times[non_direct]))],
           arrayMap((c, m, t) -> ('linear', c, m, 1. / contacts, toNullable(t)), channels, campaigns, times),
           arrayMap((c, m, t, k) -> ('position_based', c, m,
                                     multiIf(contacts = 1, 1., contacts = 2, 0.5, k = 1 OR k = contacts, 0.4,
                                             0.2 / (contacts - 2)), toNullable(t)),
                    channels, campaigns, times, arrayEnumerate(channels)),
           arrayMap((c, m, t, d) -> ('time_decay', c, m, d / decay_sum, toNullable(t)),
                    channels, campaigns, times, decay))) AS credits
FROM (SELECT *, arraySum(decay) AS decay_sum FROM attribution_windows);

-- One row per purchase and contact in its window (the purchase itself when it has none) with the credit each
-- model gives that contact (0 where the model gives it none: first_touch, last_touch and last_non_direct credit
-- one contact). attribution reads it, and the dashboard and `reise report` sum it for a date range.
CREATE OR REPLACE VIEW attribution_contact_credits AS
SELECT
    customer_id,
    purchased_at,
    purchase_channel,
    purchase_campaign,
    revenue,
    contacts,
    channel,
    campaign,
    touched_at,
    toFloat64(k = 1) AS first_touch,
    toFloat64(k = n) AS last_touch,
    toFloat64(k = if(contacts = 0, 1, non_direct)) AS last_non_direct,
    1. / n AS linear,
    multiIf(n = 1, 1., n = 2, 0.5, k = 1 OR k = n, 0.4, 0.2 / (n - 2)) AS position_based,
    weight / decay_sum AS time_decay
FROM (SELECT *, greatest(contacts, 1) AS n, if(contacts = 0, 1., arraySum(decay)) AS decay_sum FROM attribution_windows)
ARRAY JOIN
    if(contacts = 0, [purchase_channel], channels) AS channel,
    if(contacts = 0, [purchase_campaign], campaigns) AS campaign,
    if(contacts = 0, [NULL], arrayMap(t -> toNullable(t), times)) AS touched_at,
    if(contacts = 0, [1.], decay) AS weight,
    arrayEnumerate(if(contacts = 0, [1.], decay)) AS k;

-- As in 0011: attribution_purchases with its credits unrolled.
CREATE OR REPLACE VIEW attribution_credits AS
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

-- As in 0011: one row per model, channel and campaign (the sums of attribution_credits).
CREATE OR REPLACE VIEW attribution AS
SELECT
    model,
    channel,
    campaign,
    purchases[k] AS credited_purchases,
    revenues[k] AS credited_revenue
FROM
(
    SELECT
        channel,
        campaign,
        [sum(first_touch), sum(last_touch), sum(last_non_direct), sum(linear), sum(position_based),
         sum(time_decay)] AS purchases,
        [sum(first_touch * toFloat64(revenue)), sum(last_touch * toFloat64(revenue)),
         sum(last_non_direct * toFloat64(revenue)), sum(linear * toFloat64(revenue)),
         sum(position_based * toFloat64(revenue)), sum(time_decay * toFloat64(revenue))] AS revenues,
        [max(first_touch) > 0, max(last_touch) > 0, max(last_non_direct) > 0, true, true, true] AS credited
    FROM attribution_contact_credits
    GROUP BY channel, campaign
)
ARRAY JOIN ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay'] AS model,
           arrayEnumerate(purchases) AS k
WHERE credited[k];

-- As in 0011: a session per resolved customer, a contact at least the session gap after the previous one
-- starting the next.
CREATE OR REPLACE VIEW sessions AS
SELECT
    customer_id,
    concat(customer_id, '#', toString(number)) AS session_id,
    session_starts[number] AS started_at,
    session_ends[number] AS ended_at,
    session_sizes[number] AS touchpoints,
    session_channels[number] AS entry_channel,
    session_campaigns[number] AS entry_campaign,
    session_pages[number] AS landing_page,
    session_purchases[number] AS has_purchase
FROM
(
    SELECT
        customer_id,
        -- sorted by time (then by position: contacts at the same millisecond in no defined order), each array
        -- on its own, so that a question reads and sorts only the arrays it needs
        arrayZip(at, arrayEnumerate(at)) AS sort_key,
        arraySort(at) AS times,
        (SELECT if(count() = 0, 30., argMax(value, version)) FROM analytics_settings
         WHERE key = 'session_gap_minutes') AS gap_minutes,
        toInt64(ifNull(gap_minutes, 30.) * 60000) AS gap_ms,
        arrayMap((d, i) -> i = 1 OR d >= gap_ms, arrayDifference(arrayMap(t -> toUnixTimestamp64Milli(t), times)),
                 arrayEnumerate(times)) AS starts,
        arrayPushBack(arrayPopFront(starts), true) AS ends,
        -- one element per session
        arrayFilter((t, s) -> s, times, starts) AS session_starts,
        arrayFilter((t, e) -> e, times, ends) AS session_ends,
        arrayMap((l, f) -> toUInt32(l - f + 1), arrayFilter((i, e) -> e, arrayEnumerate(times), ends),
                 arrayFilter((i, s) -> s, arrayEnumerate(times), starts)) AS session_sizes,
        arrayFilter((c, s) -> s, arraySort((x, k) -> k, channel, sort_key), starts) AS session_channels,
        arrayFilter((c, s) -> s, arraySort((x, k) -> k, campaign, sort_key), starts) AS session_campaigns,
        -- each contact's first page at or after it within its session; a session's landing page is its first one's
        arrayFilter((page, s) -> s, arrayReverseFill((page, e) -> page != '' OR e,
                                                     arraySort((x, k) -> k, page_url, sort_key), ends), starts)
            AS session_pages,
        -- purchases up to each contact: a session holds one when the count grows from its start to its end
        arrayCumSum(arrayMap(s -> toUInt32(s = 3), arraySort((x, k) -> k, stage, sort_key))) AS purchases_so_far,
        arrayMap((after, before) -> toUInt8(after > before),
                 arrayFilter((n, e) -> e, purchases_so_far, ends),
                 arrayFilter((n, s) -> s, arrayPushFront(arrayPopBack(purchases_so_far), 0), starts))
            AS session_purchases
    FROM customer_contacts
    WHERE length(at) > 0
)
ARRAY JOIN arrayEnumerate(session_starts) AS number;

-- As in 0011: the channel and stage sequences before each customer's first purchase.
CREATE OR REPLACE VIEW journey_paths AS
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
        purchased_at IS NOT NULL AS bought,
        if(bought, (toUnixTimestamp64Milli(assumeNotNull(purchased_at)) - toUnixTimestamp64Milli(arrayMin(at)))
                   / 86400000, 0.) AS days_to_purchase,
        arraySort(arrayFilter(c -> NOT bought OR c.1 < assumeNotNull(purchased_at), arrayZip(at, channel, stage)))
            AS before,
        [('channel', arraySlice(arrayCompact(before.2), -5)),
         ('stage', arrayMap(s -> ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][s],
                            arraySlice(arrayCompact(arrayFilter(s -> s > 0, before.3)), -5)))] AS paths
    FROM customer_contacts
    WHERE length(at) > 0
)
ARRAY JOIN paths.1 AS kind, paths.2 AS path
GROUP BY kind, path;

-- As in 0011: the time between first reaching consecutive stages; the three percentiles in one pass.
CREATE OR REPLACE VIEW stage_durations AS
SELECT
    ['awareness', 'consideration', 'purchase', 'retention'][pair] AS from_stage,
    ['consideration', 'purchase', 'retention', 'advocacy'][pair] AS to_stage,
    customers,
    toNullable(seconds[1]) AS median_seconds,
    toNullable(seconds[2]) AS p75_seconds,
    toNullable(seconds[3]) AS p90_seconds
FROM
(
    SELECT pair, count() AS customers, quantilesExact(0.5, 0.75, 0.9)(assumeNotNull(between)) AS seconds
    FROM
    (
        SELECT
            [(toUnixTimestamp64Milli(min(reached_2)) - toUnixTimestamp64Milli(min(reached_1))) / 1000,
             (toUnixTimestamp64Milli(min(reached_3)) - toUnixTimestamp64Milli(min(reached_2))) / 1000,
             (toUnixTimestamp64Milli(min(reached_4)) - toUnixTimestamp64Milli(min(reached_3))) / 1000,
             (toUnixTimestamp64Milli(min(reached_5)) - toUnixTimestamp64Milli(min(reached_4))) / 1000] AS times
        FROM customer_state
        GROUP BY customer_id
        HAVING max(hidden) = 0
    )
    ARRAY JOIN times AS between, [1, 2, 3, 4] AS pair
    WHERE between IS NOT NULL
    GROUP BY pair
)
ORDER BY pair;

-- As in 0011: customers by the week of their first contact and the share who reached each stage within 1, 2, 4,
-- 8 and 12 weeks; counted per cohort in one pass (a customer's weeks to each stage), the stages unrolled after.
CREATE OR REPLACE VIEW cohorts AS
SELECT
    cohort_week,
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][rank] AS stage,
    customers,
    if(cohort_week + 14 > today(), NULL, reached_by[5 * (rank - 1) + 1] / customers) AS by_week_1,
    if(cohort_week + 21 > today(), NULL, reached_by[5 * (rank - 1) + 2] / customers) AS by_week_2,
    if(cohort_week + 35 > today(), NULL, reached_by[5 * (rank - 1) + 3] / customers) AS by_week_4,
    if(cohort_week + 63 > today(), NULL, reached_by[5 * (rank - 1) + 4] / customers) AS by_week_8,
    if(cohort_week + 91 > today(), NULL, reached_by[5 * (rank - 1) + 5] / customers) AS by_week_12
FROM
(
    SELECT
        cohort_week,
        count() AS customers,
        -- customers who reached stage rank r within 1, 2, 4, 8 and 12 weeks: elements 5 * (r - 1) + 1 ... + 5
        sumForEach(arrayFlatten(arrayMap(after -> arrayMap(weeks -> toUInt64(after < 604800000 * weeks),
                                                           [1, 2, 4, 8, 12]), after_first))) AS reached_by
    FROM
    (
        SELECT
            toMonday(assumeNotNull(min(first_seen))) AS cohort_week,
            toUnixTimestamp64Milli(assumeNotNull(min(first_seen))) AS first,
            -- ms from the first contact to each stage (never reached: past every bound)
            arrayMap(r -> ifNull(toUnixTimestamp64Milli(r) - first, 9223372036854775807),
                     [min(reached_1), min(reached_2), min(reached_3), min(reached_4), min(reached_5)]) AS after_first
        FROM customer_state
        GROUP BY customer_id
        HAVING max(hidden) = 0 AND min(first_seen) IS NOT NULL
    )
    GROUP BY cohort_week
)
ARRAY JOIN [1, 2, 3, 4, 5] AS rank
ORDER BY cohort_week, rank;
