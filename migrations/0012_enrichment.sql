-- Issue 14: Segment and RudderStack fields kept, and every touchpoint enriched at ingest (docs/enrichment.md).
ALTER TABLE touchpoints
    ADD COLUMN IF NOT EXISTS group_id String COMMENT 'groupId: the account (company) of a group call',
    ADD COLUMN IF NOT EXISTS category String COMMENT 'the page or screen category',
    ADD COLUMN IF NOT EXISTS locale LowCardinality(String) COMMENT 'context.locale',
    ADD COLUMN IF NOT EXISTS timezone LowCardinality(String) COMMENT 'context.timezone',
    ADD COLUMN IF NOT EXISTS app LowCardinality(String) COMMENT 'context.app: name/version',
    ADD COLUMN IF NOT EXISTS context Map(LowCardinality(String), String)
        COMMENT 'the rest of context (objects as JSON text); ip, userAgent, library and campaign are columns',
    ADD COLUMN IF NOT EXISTS integrations Map(LowCardinality(String), String) COMMENT 'integrations, as sent',
    ADD COLUMN IF NOT EXISTS browser LowCardinality(String),
    ADD COLUMN IF NOT EXISTS browser_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os LowCardinality(String),
    ADD COLUMN IF NOT EXISTS os_version LowCardinality(String),
    ADD COLUMN IF NOT EXISTS device_type LowCardinality(String) COMMENT 'desktop, mobile, tablet, bot, other or empty',
    ADD COLUMN IF NOT EXISTS device_brand LowCardinality(String),
    ADD COLUMN IF NOT EXISTS device_model LowCardinality(String),
    ADD COLUMN IF NOT EXISTS country LowCardinality(String) COMMENT 'ISO 3166-1 alpha-2, from the full IP at ingest',
    ADD COLUMN IF NOT EXISTS region LowCardinality(String),
    ADD COLUMN IF NOT EXISTS city LowCardinality(String),
    ADD COLUMN IF NOT EXISTS bot UInt8 COMMENT '1: a bot or crawler (user agent or behaviour)',
    ADD COLUMN IF NOT EXISTS machine UInt8 COMMENT '1: a mail machine open or click (Apple MPP, security scanner)',
    ADD COLUMN IF NOT EXISTS flag_reasons Array(LowCardinality(String)) COMMENT 'why bot or machine is set',
    ADD COLUMN IF NOT EXISTS in_journey UInt8 DEFAULT 1
        COMMENT '0: flagged and left out of the journey (REISE_JOURNEY_EXCLUDE); customer_state_mv skips it';

-- The per-customer state skips touchpoints left out of the journey (the rest as in 0011): every figure read from
-- customer_state (journeys, funnel, contacts before purchase, the analytics views of 0011) leaves them out.
DROP VIEW IF EXISTS customer_state_mv;

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
FROM (SELECT *, type IN ('track', 'page', 'screen') AS contact FROM touchpoints WHERE in_journey) AS t
LEFT JOIN
(
    SELECT journey_id, argMax(customer_id, version) AS customer_id
    FROM identity_keys
    WHERE journey_id IN (SELECT journey_id FROM touchpoints WHERE in_journey)
    GROUP BY journey_id
) AS m ON m.journey_id = t.journey_id
GROUP BY customer_id;

-- Group calls (B2B accounts): which accounts each customer belongs to, by the customer's current key.
-- SELECT * FROM customer_groups WHERE customer_id = 'x', or every member of an account by group_id.
CREATE VIEW IF NOT EXISTS customer_groups AS
SELECT
    if(k.customer_id != '', k.customer_id, g.journey_id) AS customer_id,
    g.group_id AS group_id,
    min(g.timestamp) AS first_seen,
    max(g.timestamp) AS last_seen,
    argMax(g.traits, g.timestamp) AS traits
FROM
(
    SELECT journey_id, group_id, timestamp, traits FROM touchpoints WHERE type = 'group' AND group_id != ''
) AS g
LEFT JOIN
(
    SELECT journey_id, argMax(customer_id, version) AS customer_id
    FROM identity_keys
    GROUP BY journey_id
) AS k ON k.journey_id = g.journey_id
GROUP BY customer_id, group_id;
