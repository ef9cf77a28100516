-- Web attribution (collector/attribution.py): for page views that name no channel, the traffic class the
-- collector derived from UTM fields, click ids and the referrer, and the source it names.
ALTER TABLE touchpoints
    ADD COLUMN IF NOT EXISTS traffic_class LowCardinality(String)
        COMMENT 'email, social, ads, sms, search, referral, direct or internal; empty when not attributed',
    ADD COLUMN IF NOT EXISTS traffic_source LowCardinality(String)
        COMMENT 'the source named: utm_source, a known site (google, facebook, ...) or the referrer host';
