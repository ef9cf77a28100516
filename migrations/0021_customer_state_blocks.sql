-- Smaller compressed blocks for customer_state, so that one customer's lookup decompresses less.
--
-- A lookup reads one granule (256 rows) of each column, but the engine decompresses the whole compressed block that
-- holds it: with the default blocks (64 KiB to 1 MiB) that is hundreds of granules of every narrow column, in each
-- part. With blocks of 4-16 KiB a read of every column of one customer took 1.7-3.5 ms less at a million customers
-- (three alternating comparisons on one store; through customer_journey 0-2.5 ms less, within the noise of a
-- lookup; bench/README.md) for 3-15% more disk; the bulk questions measured the same. Parts written before this
-- keep their blocks until they merge.
ALTER TABLE customer_state MODIFY SETTING min_compress_block_size = 4096, max_compress_block_size = 16384;
