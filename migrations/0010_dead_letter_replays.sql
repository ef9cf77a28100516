-- Dead letters replayed by `reise dead-letters replay` (or POST /v1/admin/dead-letters/replay): marked here
-- rather than deleted, so the listing can leave them out and a replay does not take them again. A dead letter is
-- named by the cityHash64 of its columns (collector/journey/deadletters.py DEAD_LETTER_KEY).
CREATE TABLE IF NOT EXISTS dead_letter_replays
(
    key          UInt64 COMMENT 'cityHash64 of the columns of the dead letter',
    replayed_at  DateTime64(3, 'UTC'),
    outcome      LowCardinality(String) COMMENT 'replayed: its events are stored now (accepted or already there)',
    events       UInt32 COMMENT 'events the dead letter held'
)
ENGINE = ReplacingMergeTree(replayed_at)
ORDER BY key
SETTINGS non_replicated_deduplication_window = 1000;
