-- The journey views of 0008, same names, columns and results, rewritten for speed (bench/README.md,
-- journey_scale.py). What cost time, and what replaces it:
-- * customer_journey was a view over a GROUP BY sub-query, and customer_journey_of a view over customer_journey:
--   every level of nesting costs the engine planning time on each query, a large part of a lookup by key. Both
--   are now one level: the GROUP BY, with merged-away keys (hidden) left out by HAVING. customer_journey_of finds
--   the id's customer key in identity_keys with a scalar sub-query (a primary-key read, run once) and reads that
--   key's rows by primary key.
-- * stage_funnel merged every customer's rows with GROUP BY customer_id (a hash table of every key). It now reads
--   customer_state with FINAL: the engine merges a customer's rows as a background merge would (each column's own
--   function: max here), for the columns the question reads only, in key order, and passes through the key ranges
--   no other part overlaps. The condition on the merged value (hidden = 0: not a merged-away key) is applied after
--   the merge, as FINAL does by default (optimize_move_to_prewhere_if_final = 0). In the cluster layout every row
--   of a customer is on the shard of its key (customer_state is sharded by customer_id), so FINAL on each shard
--   merges each customer completely.
-- * contacts_before_purchase stays as in 0008: with FINAL the engine copies every customer's contact array through
--   the merge, which cost as much as the GROUP BY's array states; and the one-row/several-rows split of 0016 (a set
--   of the keys with several rows) measured slower for both views: building that set is a hash pass over every
--   key like the GROUP BY itself, and a UNION ALL of its IN and NOT IN branches builds it twice. The split pays
--   only where merging the rows is far dearer than a hash pass (0016's contact tuples).

-- One row per customer: the merged state of every live key (one level: GROUP BY, hidden keys out by HAVING).
-- customer_state.furthest_stage is the column; furthest_stage alone is this view's name for the stage.
CREATE OR REPLACE VIEW customer_journey AS
SELECT
    customer_id,
    arraySort(groupUniqArrayArray(ids)) AS ids,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][current_stage_rank + 1] AS current_stage,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][furthest_stage_rank + 1] AS furthest_stage,
    toUInt8(max(stage_key) % 8) AS current_stage_rank,
    max(customer_state.furthest_stage) AS furthest_stage_rank,
    sum(contacts) AS contacts,
    sumMap(contacts_by_channel) AS contacts_by_channel,
    if(reached_purchase_at IS NULL, NULL,
       toUInt64(arraySum(times -> arrayCount(t -> t < reached_purchase_at, times), groupArray(contact_times))))
        AS contacts_before_first_purchase,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(purchases) AS purchases,
    sum(revenue) AS revenue,
    min(reached_1) AS reached_awareness_at,
    min(reached_2) AS reached_consideration_at,
    min(reached_3) AS reached_purchase_at,
    min(reached_4) AS reached_retention_at,
    min(reached_5) AS reached_advocacy_at
FROM customer_state
GROUP BY customer_id
HAVING max(hidden) = 0;

-- One customer by any of their ids: SELECT * FROM customer_journey_of(id = 'x'). The same columns as
-- customer_journey (keep the two lists alike; a test compares them), for the one key the id resolves to (itself
-- when no link maps it).
CREATE OR REPLACE VIEW customer_journey_of AS
SELECT
    customer_id,
    arraySort(groupUniqArrayArray(ids)) AS ids,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][current_stage_rank + 1] AS current_stage,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][furthest_stage_rank + 1] AS furthest_stage,
    toUInt8(max(stage_key) % 8) AS current_stage_rank,
    max(customer_state.furthest_stage) AS furthest_stage_rank,
    sum(contacts) AS contacts,
    sumMap(contacts_by_channel) AS contacts_by_channel,
    if(reached_purchase_at IS NULL, NULL,
       toUInt64(arraySum(times -> arrayCount(t -> t < reached_purchase_at, times), groupArray(contact_times))))
        AS contacts_before_first_purchase,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(purchases) AS purchases,
    sum(revenue) AS revenue,
    min(reached_1) AS reached_awareness_at,
    min(reached_2) AS reached_consideration_at,
    min(reached_3) AS reached_purchase_at,
    min(reached_4) AS reached_retention_at,
    min(reached_5) AS reached_advocacy_at
FROM customer_state
WHERE customer_id = (
    SELECT if(count() = 0, {id:String}, argMax(customer_id, version))
    FROM identity_keys
    WHERE journey_id = {id:String}
)
GROUP BY customer_id
HAVING max(hidden) = 0;

-- The funnel as in 0008, from each live customer's merged row (FINAL).
CREATE OR REPLACE VIEW stage_funnel AS
SELECT
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy'][rank] AS stage,
    reached[rank] AS customers,
    if(rank = 1, NULL, customers / nullIf(reached[rank - 1], 0)) AS conversion_from_previous,
    if(rank = 5, 0, customers - reached[rank + 1]) AS dropped_here
FROM
(
    SELECT [countIf(furthest_stage >= 1), countIf(furthest_stage >= 2), countIf(furthest_stage >= 3),
            countIf(furthest_stage >= 4), countIf(furthest_stage >= 5)] AS reached
    FROM customer_state FINAL
    WHERE hidden = 0
)
ARRAY JOIN [1, 2, 3, 4, 5] AS rank
ORDER BY rank;
