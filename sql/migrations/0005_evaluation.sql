-- Reserved while this migration is being written (placeholder so versions stay contiguous).
SELECT 1;
