"""The Lua scripts as the server loads them (Sources/PresenceRedis/Common/Scripts.swift): each `--#include <name>` line
replaced by Scripts/lib/<name>.lua, so the SHA-1s here are the ones Redis knows the scripts by."""
import hashlib
import os

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "PresenceRedis", "Scripts")


def compose(source: str, folder: str = FOLDER) -> str:
    out = []
    for line in source.split("\n"):
        if not line.startswith("--#include "):
            out.append(line)
            continue
        name = line[len("--#include "):].strip()
        with open(os.path.join(folder, "lib", name + ".lua"), encoding="utf-8") as f:
            included = f.read().split("\n")
        if included and included[-1] == "":
            included.pop()
        out.extend(included)
    return "\n".join(out)


def composed_shas(folder: str = FOLDER) -> dict:
    """{file name: SHA-1 of the composed script} for every script (not the libraries), sorted by name."""
    shas = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".lua"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                shas[name] = hashlib.sha1(compose(f.read(), folder).encode()).hexdigest()
    return shas
