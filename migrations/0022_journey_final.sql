-- One customer's journey with less planning (bench/README.md, journey_scale.py; docs/analysts.md). Same view names,
-- columns, types (DESCRIBE) and rows.
--
-- What cost time: about 11 of the 15 ms of a lookup by key at a million customers was the engine's planning, the
-- same at twenty thousand: the GROUP BY's 16 aggregate functions, and pushing the key condition down through the
-- grouping to the primary key. Both views now read customer_state with FINAL: the engine merges a customer's rows
-- as a background merge would (each column's own function), with no aggregate function to plan. The key goes to
-- PREWHERE, read before the merge: customer_journey_of writes it there, and customer_journey has the engine move
-- an analyst's key condition (optimize_move_to_prewhere_if_final = 1). With FINAL the engine moves only conditions
-- on the sorting key (ClickHouse's test 01737_move_order_key_to_prewhere_select_final), so hidden = 0 and any
-- condition on another column still apply to the merged row, as in stage_funnel. At a million customers, two
-- alternating comparisons (journey_scale.py --compare): by key 12.8-15.1 against 15.1-16.4 ms, customer_journey_of
-- 23.7-25.2 against 27.8-29.2, customers per current stage 48-51 against 147-152; on a copy of customer_state in
-- fourteen parts (merges stopped) the same read written out, by key, 14.9 against 20.2 ms.
--
-- Types: FINAL gives each merged column in its stored SimpleAggregateFunction type, whose values and wire format
-- are its inner type's (clients read it as that type; furthest_stage_rank was already one). Converting the twelve
-- columns back costs about 2 ms of planning, all of the gain, so customer_journey declares its columns with the
-- types it always had (what DESCRIBE and a schema browser show) and answers carry the stored types.
-- ids keep arrayDistinct: a single unmerged row's list is given as written.
--
-- Cluster: customer_state is sharded by customer_id, so FINAL on each shard merges each customer completely.

CREATE OR REPLACE VIEW customer_journey
(
    customer_id String,
    ids Array(String),
    current_stage Nullable(String),
    furthest_stage Nullable(String),
    current_stage_rank UInt8,
    furthest_stage_rank SimpleAggregateFunction(max, UInt8),
    contacts UInt64,
    contacts_by_channel Map(String, UInt64),
    contacts_before_first_purchase Nullable(UInt64),
    first_seen Nullable(DateTime64(3, 'UTC')),
    last_seen Nullable(DateTime64(3, 'UTC')),
    purchases UInt64,
    revenue Decimal(38, 4),
    reached_awareness_at Nullable(DateTime64(3, 'UTC')),
    reached_consideration_at Nullable(DateTime64(3, 'UTC')),
    reached_purchase_at Nullable(DateTime64(3, 'UTC')),
    reached_retention_at Nullable(DateTime64(3, 'UTC')),
    reached_advocacy_at Nullable(DateTime64(3, 'UTC'))
)
AS SELECT
    customer_id,
    arraySort(arrayDistinct(ids)) AS ids,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][current_stage_rank + 1] AS current_stage,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][furthest_stage_rank + 1] AS furthest_stage,
    toUInt8(stage_key % 8) AS current_stage_rank,
    customer_state.furthest_stage AS furthest_stage_rank,
    contacts,
    contacts_by_channel,
    if(reached_purchase_at IS NULL, NULL, toUInt64(arrayCount(t -> t < reached_purchase_at, contact_times)))
        AS contacts_before_first_purchase,
    first_seen,
    last_seen,
    purchases,
    revenue,
    reached_1 AS reached_awareness_at,
    reached_2 AS reached_consideration_at,
    reached_3 AS reached_purchase_at,
    reached_4 AS reached_retention_at,
    reached_5 AS reached_advocacy_at
FROM customer_state FINAL
WHERE hidden = 0
SETTINGS optimize_move_to_prewhere_if_final = 1;

-- One customer by any of their ids: SELECT * FROM customer_journey_of(id = 'x'). The same columns as
-- customer_journey (keep the two lists alike; a test compares them), for the one key the id resolves to (itself
-- when no link maps it), read before the merge. Written out rather than over customer_journey: a parameterised view
-- over it converts every answer to the declared types and took 26.4 against 23.5 ms (200k customers, alternating).
CREATE OR REPLACE VIEW customer_journey_of AS
SELECT
    customer_id,
    arraySort(arrayDistinct(ids)) AS ids,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][current_stage_rank + 1] AS current_stage,
    [NULL, 'awareness', 'consideration', 'purchase', 'retention', 'advocacy'][furthest_stage_rank + 1] AS furthest_stage,
    toUInt8(stage_key % 8) AS current_stage_rank,
    customer_state.furthest_stage AS furthest_stage_rank,
    contacts,
    contacts_by_channel,
    if(reached_purchase_at IS NULL, NULL, toUInt64(arrayCount(t -> t < reached_purchase_at, contact_times)))
        AS contacts_before_first_purchase,
    first_seen,
    last_seen,
    purchases,
    revenue,
    reached_1 AS reached_awareness_at,
    reached_2 AS reached_consideration_at,
    reached_3 AS reached_purchase_at,
    reached_4 AS reached_retention_at,
    reached_5 AS reached_advocacy_at
FROM customer_state FINAL
PREWHERE customer_id = (
    SELECT if(count() = 0, {id:String}, argMax(customer_id, version))
    FROM identity_keys
    WHERE journey_id = {id:String}
)
WHERE hidden = 0;
