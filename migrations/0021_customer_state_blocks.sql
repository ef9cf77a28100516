-- Smaller compressed blocks for customer_state, so that one customer's lookup decompresses less.
--
-- A lookup reads one granule (256 rows) of each column, but the engine decompresses the whole compressed block that
-- holds it: with the default blocks (64 KiB to 1 MiB) that is hundreds of granules of every narrow column, in each
-- part. Blocks of 4-16 KiB make a read of every column of one customer about 3.5 ms faster at a million customers
-- (12.5 -> 9 ms, bench/README.md) for about 15% more disk; scans read whole blocks anyway. Parts written before
-- this keep their blocks until they merge.
ALTER TABLE customer_state MODIFY SETTING min_compress_block_size = 4096, max_compress_block_size = 16384;
