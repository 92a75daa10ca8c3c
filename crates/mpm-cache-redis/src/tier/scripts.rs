//! The Lua scripts that keep an entry and its tag sets consistent (each runs atomically on the
//! server). Both touch only keys of one namespace, which share a hash slot.

/// `KEYS[1]` the entry, `KEYS[2..]` its tag sets; `ARGV[1]` the record, `ARGV[2]` the TTL in
/// milliseconds (0: none). Writes the entry and adds it to each tag set; a tag set lives as
/// long as its longest-lived entry (no TTL if any entry has none), so tag sets of expired
/// entries go away by themselves.
pub(crate) const PUT_TAGGED: &str = r"
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
for i = 2, #KEYS do
  local fresh = redis.call('EXISTS', KEYS[i]) == 0
  redis.call('SADD', KEYS[i], KEYS[1])
  if ttl == 0 then
    redis.call('PERSIST', KEYS[i])
  elseif fresh then
    redis.call('PEXPIRE', KEYS[i], ttl)
  else
    local left = redis.call('PTTL', KEYS[i])
    if left >= 0 and left < ttl then
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end
return 1
";

/// `KEYS[1]` a tag set. Removes every entry in it and the set; returns how many entries were
/// there. Costs O(members) on the server, in one step: other clients wait meanwhile.
pub(crate) const REMOVE_TAG: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
local removed = 0
for i = 1, #members, 500 do
  removed = removed + redis.call('UNLINK', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[1])
return removed
";

/// `KEYS[1]` an entry; `ARGV[1]` the checksum that heads the record this instance wrote,
/// `ARGV[2]` the bus channel, `ARGV[3]` the undo message for the entry. Undoes a write that
/// may have raced an invalidation (received late, or lost while the subscription was broken):
/// removes the entry and publishes the message only if the entry still holds that record, so a
/// later write (this instance's or another's) is never undone. Returns 1 if it removed the
/// entry, else 0.
pub(crate) const UNDO_WRITE: &str = r"
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'string' and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  redis.call('UNLINK', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
";
