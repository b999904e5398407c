"""Redis memory per present member, old layout against new (see bench/member-memory).

Members are entered by each layout's own presence_join.lua through EVALSHA, pipelined, so the keys and values are
exactly what the service writes. Each version's keys are read from its script's header (`-- KEYS[n] room:{id}:...`,
`<user>` standing for the member), so any commit's script can be the baseline. Memory is INFO memory's used_memory
before and after, on an otherwise idle Redis (FLUSHALL between runs)."""
import argparse
import os
import re
import time

import redis

from lib.benchlib import composed_script

TTL_MS = 3_600_000
SUPPORT_STATE = '{"role":"customer","typing":false}'


def used_memory(r):
    return int(r.info("memory")["used_memory"])


def key_patterns(source):
    """The script's KEYS[1..n] patterns from its header comment, e.g. ['room:{id}:meta', ..., 'room:{id}:presence:<user>']."""
    found = {}
    for line in source.splitlines():
        if not line.startswith("--"):
            break
        for number, pattern in re.findall(r"KEYS\[(\d+)\]\s+(room:\{id\}:\S+)", line):
            found.setdefault(int(number), pattern)
    assert found and sorted(found) == list(range(1, len(found) + 1)), f"no KEYS[] header: {found}"
    return [found[i] for i in sorted(found)]


def run(r, patterns, sha, rooms, per_room, state):
    r.flushall()
    time.sleep(0.2)
    for room in rooms:
        r.hset(f"room:{{{room}}}:meta", mapping={"id": room, "name": room, "type": "public", "createdAt": 1})
    before = used_memory(r)
    pipe = r.pipeline(transaction=False)
    n = 0
    for room in rooms:
        for i in range(per_room):
            user = f"m{i:07d}"
            keys = [p.replace("{id}", f"{{{room}}}").replace("<user>", user) for p in patterns]
            pipe.evalsha(sha, len(keys), *keys, user, TTL_MS, state)
            n += 1
            if n % 2000 == 0:
                for reply in pipe.execute(raise_on_error=True):
                    assert reply[0] == 1, reply
    for reply in pipe.execute(raise_on_error=True):
        assert reply[0] == 1, reply
    return (used_memory(r) - before) / n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--old-join", required=True)
    p.add_argument("--new-join", required=True)
    p.add_argument("--old-ref", default="old")
    p.add_argument("--members", type=int, default=100_000, help="members in the big room (and big room / 100 rooms of 100)")
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port)
    # Composed as the server loads them (`--#include` lines), an old script with the libraries beside the new one.
    folder = os.path.dirname(os.path.abspath(a.new_join))
    shas = {"old": composed_script(a.old_join, folder), "new": composed_script(a.new_join, folder)}
    patterns = {layout: key_patterns(source) for layout, source in shas.items()}
    for layout in ("old", "new"):
        print(f"{layout} keys: {' '.join(patterns[layout])}")
    small_rooms = max(1, a.members // 100)
    cases = [
        (f"one room of {a.members:,}, chat member (state {{}})", ["memroom"], a.members, ""),
        (f"one room of {a.members:,}, support member (a role)", ["memroom"], a.members, SUPPORT_STATE),
        (f"{small_rooms:,} rooms of 100, chat member (state {{}})", [f"r{i:04d}" for i in range(small_rooms)], 100, ""),
    ]
    print(f"Redis {r.info('server')['redis_version']}; bytes per present member (INFO memory used_memory delta / members)")
    print(f"{'case':48} {'old (' + a.old_ref + ')':>14} {'new':>8} {'new/old':>8}")
    for name, rooms, per_room, state in cases:
        figures = {}
        for layout in ("old", "new"):
            r.script_flush()
            sha = r.script_load(shas[layout])
            figures[layout] = run(r, patterns[layout], sha, rooms, per_room, state)
        print(f"{name:48} {figures['old']:14.1f} {figures['new']:8.1f} {figures['new'] / figures['old']:8.2f}")
    r.flushall()


if __name__ == "__main__":
    main()
