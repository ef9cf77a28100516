-- One customer by any of their ids, as fast as by their key (bench/README.md, journey_scale.py; docs/analysts.md).
--
-- customer_journey_of(id = 'x') is a parameterised view: the engine analyses its body once for the view's columns
-- and once more for the query, about a third of a lookup's time at a million customers. The collector's own lookups
-- therefore run its body written out (collector/journey/analyst.py, CUSTOMER_SQL); analysts get the same from one
-- SQL function, the id's customer key, to use with the plain view:
--
--     SELECT * FROM customer_journey WHERE customer_id = reise_customer_key('x')
--
-- It is customer_journey_of's sub-query: the key identity_keys maps the id to (its latest version), the id itself
-- when no link maps it. The engine writes the function's body into the query (a scalar sub-query, run once), so
-- the key condition reaches customer_state's primary key as with a literal key.
--
-- A SQL function belongs to the server, not to a database: hence the prefix, so that it cannot clash with another
-- application's functions. Its table is not qualified, so it reads identity_keys of the database the query runs in
-- (two Reise databases on one server share the same definition). It takes one id, a literal or a query parameter:
-- a column as its argument is refused by the engine (the sub-query would be correlated), never answered wrongly.
-- The query guard allows it by name (collector/store/sqlguard.py, REISE_FUNCTIONS); analysts cannot create or drop
-- functions (the guard and readonly both refuse them).

CREATE OR REPLACE FUNCTION reise_customer_key AS (id) -> (
    SELECT if(count() = 0, id, argMax(customer_id, version))
    FROM identity_keys
    WHERE journey_id = id
);

-- The dashboard's customer page reads the customer's identity links: those from or to any of their ids
-- (collector/journey/analyst.py, LINKS_SQL). identity_links is ordered by anonymous_id, so the links to an id
-- (customer_id) were a full scan, growing with the store (about 40 ms of CPU at a million customers). A bloom
-- filter on customer_id lets that half of the read skip the granules without the ids (9 of 123 at a million);
-- LINKS_SQL reads the two halves apart (UNION ALL), since an OR with the key's condition cannot use it.
ALTER TABLE identity_links ADD INDEX IF NOT EXISTS links_by_customer customer_id TYPE bloom_filter GRANULARITY 1;

ALTER TABLE identity_links MATERIALIZE INDEX links_by_customer;
