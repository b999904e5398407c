-- Redis's clock now, in ms, on the node that holds the room: the bound of a range query the caller sends next
-- (`ZRANGEBYSCORE room:{id}:members (<now> +inf WITHSCORES` lists who is present). The range goes as a plain command
-- rather than from inside a script: a script's reply of 100,000 members and scores is copied into Lua and back out,
-- which took as long again as the range itself.
-- KEYS[1] room:{id}:members (it only routes the call to the room's node on a cluster)
--#include clock
return (redis_now())
