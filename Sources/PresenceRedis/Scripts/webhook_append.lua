-- Appends one webhook event to one receiver's outbox stream within both of its bounds: at most WEBHOOK_OUTBOX_MAX
-- entries, and entries counting for at most the byte budget (WEBHOOK_OUTBOX_MAX_BYTES less Redis's own bookkeeping,
-- see WebhookSettings.outboxEntryBudget); the oldest entries are dropped first (counted as dropped by
-- webhook_backlog.lua: ever added - waiting - delivered). An event larger than the per-event limit is not written.
-- KEYS[1] webhooks:{tag}:<target>   KEYS[2] webhooks:{tag}:<target>:bytes (what the stream's entries count for)
-- ARGV[1] most entries   ARGV[2] most bytes   ARGV[3] largest event (bytes of JSON)   ARGV[4] the event (JSON)
-- Returns 1 when written, 0 when refused for its size.
--#include outbox
return outbox_add(KEYS[1], KEYS[2], ARGV[4], ARGV[1], ARGV[2], ARGV[3])
