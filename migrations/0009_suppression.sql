-- Ids whose events are not stored any more: `reise forget ID --suppress` puts every id of the forgotten
-- person here, `reise unsuppress ID` takes them out again. Ids are kept as the SHA-256 of the id (lower-case
-- hex), never in clear: the collector hashes each incoming id and looks it up (docs/security.md, "Forget and
-- suppression"). `person` (the SHA-256 of the forgotten person's key) groups the ids suppressed together, so
-- unsuppressing any of them lifts all of them. Collectors load the list at start and every
-- REISE_SUPPRESSION_RELOAD seconds.
CREATE TABLE IF NOT EXISTS suppressed_ids
(
    key            String COMMENT 'lower(hex(SHA256(id)))',
    person         String COMMENT 'lower(hex(SHA256(the forgotten person key))): the ids suppressed together',
    suppressed_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY key
SETTINGS non_replicated_deduplication_window = 1000;
