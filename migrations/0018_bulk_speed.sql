-- Contacts before the first purchase without merging every customer's contact arrays (bench/README.md,
-- journey_scale.py; docs/analysts.md). Same view names, columns and results.
--
-- What cost time: the count of contacts before a customer's first purchase needs the customer's first purchase
-- (the earliest over all their state rows) before it can count any row's contacts, so every question on it merged
-- every customer's contact_times arrays (GROUP BY customer_id with groupArray: about 0.4 s of CPU at 1M customers
-- of the 0.65 s the distribution took). Nothing a simple aggregate function keeps gives that count for every set of
-- rows, but three per-row values give it for nearly every customer and say exactly when they do not:
--   pre_purchase_contacts  the row's contacts before the row's own first purchase (all of them when it has none)
--   pre_purchase_last      the time of the latest of those contacts (1970 when there is none)
--   first_contact          the row's earliest contact as text that sorts by time: 20 digits of its time in ms
--                          (plus 10^14, never negative), then its channel; '~' (after every digit) when none
-- They are MATERIALIZED: computed from the row's own arrays whenever a row is written (customer_state_mv, the
-- identity resolver's moves, unlink's recount, this migration's backfill), so no writer has to know them, and rows
-- merge them with sum, max and min. For a customer whose first purchase is P (min of reached_3 over the rows), the
-- sum of pre_purchase_contacts is the exact count whenever max(pre_purchase_last) < P: every contact a row counted
-- is then before P, and every contact it did not count is at or after its own first purchase, so not before P.
-- A background merge keeps this true (the merged row's sum is its own count, or the condition fails on it from then
-- on, since max only grows and min only shrinks). Where max(pre_purchase_last) >= P (some row has contacts between
-- P and its own purchase: rows not merged yet, out-of-order arrival) the customer's arrays are merged as before.
-- Overstating pre_purchase_last can only send a customer to the arrays, never give a wrong count.
--
-- The views read the customers whose kept count holds from customer_state FINAL (the scalar columns only; the
-- condition is applied to the merged row, as stage_funnel's hidden = 0: optimize_move_to_prewhere_if_final = 0)
-- and the others with the GROUP BY of 0008, for the keys of a set built from the same scalar columns.

ALTER TABLE customer_state
    ADD COLUMN IF NOT EXISTS pre_purchase_contacts SimpleAggregateFunction(sum, UInt64)
        MATERIALIZED toUInt64(arrayCount(t -> reached_3 IS NULL OR t < reached_3, contact_times))
        COMMENT 'contacts before this row''s first purchase (all when none); exact for the customer when pre_purchase_last < its first purchase';

ALTER TABLE customer_state
    ADD COLUMN IF NOT EXISTS pre_purchase_last SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
        MATERIALIZED arrayMax(arrayPushFront(arrayFilter(t -> reached_3 IS NULL OR t < reached_3, contact_times),
                                             toDateTime64(0, 3, 'UTC')))
        COMMENT 'time of the latest contact counted in pre_purchase_contacts (1970 when none)';

ALTER TABLE customer_state
    ADD COLUMN IF NOT EXISTS first_contact SimpleAggregateFunction(min, String)
        MATERIALIZED if(empty(contact_times), '~',
                        concat(leftPad(toString(toUnixTimestamp64Milli(arrayMin(contact_times)) + 100000000000000), 20,
                                       '0'),
                               contact_channels[indexOf(contact_times, arrayMin(contact_times))]))
        COMMENT 'the earliest contact as 20 digits of ms since 1970 plus 10^14, then its channel (~ when none)';

-- the rows written before this migration (a mutation in the background; until it ran they are computed on read)
ALTER TABLE customer_state MATERIALIZE COLUMN pre_purchase_contacts;

ALTER TABLE customer_state MATERIALIZE COLUMN pre_purchase_last;

ALTER TABLE customer_state MATERIALIZE COLUMN first_contact;

-- Per purchaser, the contacts before the first purchase in time order, as in 0008: the kept count where it holds
-- (FINAL, one merged row per customer), the merged arrays for the others.
CREATE OR REPLACE VIEW contacts_before_purchase AS
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
        CAST(reached_3, 'Nullable(DateTime64(3, \'UTC\'))') AS first_purchase_at,
        toUInt64(pre_purchase_contacts) AS contacts,
        arraySort(arrayFilter(c -> c.1 < first_purchase_at,
                              arrayZip(contact_times, contact_channels, contact_campaigns))) AS touchpoints
    FROM customer_state FINAL
    WHERE hidden = 0 AND reached_3 IS NOT NULL AND pre_purchase_last < reached_3
    UNION ALL
    SELECT
        customer_id,
        min(reached_3) AS first_purchase_at,
        toUInt64(arraySum(times -> arrayCount(t -> t < first_purchase_at, times), groupArray(contact_times)))
            AS contacts,
        arraySort(arrayFilter(c -> c.1 < first_purchase_at,
                              arrayZip(groupArrayArray(contact_times), groupArrayArray(contact_channels),
                                       groupArrayArray(contact_campaigns)))) AS touchpoints
    FROM customer_state
    WHERE customer_id IN (SELECT customer_id FROM customer_state FINAL WHERE pre_purchase_last >= reached_3)
    GROUP BY customer_id
    HAVING max(hidden) = 0 AND first_purchase_at IS NOT NULL
);
