"""docker-compose.yml and ops/cluster describe the same cluster."""
import os
import re
import subprocess

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_compose_and_cluster_agree():
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    services = compose["services"]
    workers = sorted(s for s in services if s.startswith("presence-"))
    assert workers == ["presence-1", "presence-2", "presence-3"]
    cluster = open(os.path.join(ROOT, "ops", "cluster")).read()
    assert re.search(r"local workers=3", cluster)  # same default worker count
    # Only nginx publishes a port, 8080 — the port ops/cluster gives nginx by default.
    published = {s: v.get("ports", []) for s, v in services.items() if v.get("ports")}
    assert published == {"nginx": ["8080:8080"]}
    assert "http_port=${CLUSTER_PORT:-8080}" in cluster
    # Same settings for every worker: compose environment keys == ops/cluster worker_env keys (+ PORT, REDIS_URL).
    env_keys = set(services["presence-1"]["environment"])
    cluster_keys = set(re.findall(r'"?([A-Z_]+)=', cluster.split("worker_env=(", 1)[1].split(")", 1)[0]))
    assert env_keys == cluster_keys | {"PORT", "REDIS_URL"}
    assert all(services[w]["environment"] == services["presence-1"]["environment"] for w in workers)
    # Redis with ops/redis.conf in both; nginx with the config ops/cluster renders for compose.
    assert any("ops/redis.conf" in v for v in services["redis"]["volumes"])
    assert "redis-server ops/redis.conf" in cluster
    assert any(v.startswith("./ops/nginx.conf:") for v in services["nginx"]["volumes"])
    rendered = subprocess.run([os.path.join(ROOT, "ops", "cluster"), "render-nginx", "compose"], capture_output=True,
                              text=True, check=True, cwd=ROOT).stdout
    assert rendered == open(os.path.join(ROOT, "ops", "nginx.conf")).read(), "ops/nginx.conf is stale: ops/cluster render-nginx compose > ops/nginx.conf"
    for w in workers:
        assert "presence-" in rendered and f"server {w}:8080" in rendered
    # Health checks on /ready and restart policies.
    for w in workers:
        assert "/ready" in " ".join(services[w]["healthcheck"]["test"])
        assert services[w]["restart"] == "unless-stopped"


def test_redis_conf_settings():
    conf = open(os.path.join(ROOT, "ops", "redis.conf")).read()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^appendfsync everysec$", conf, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    assert re.search(r"^client-output-buffer-limit pubsub ", conf, re.M)


def test_docker_image_carries_every_resource_bundle():
    # Foundation finds a target's resources in <package>_<Target>.resources next to the binary; the runtime image
    # has no build folder to fall back on, so each bundle the server's targets declare must be copied beside it.
    package = open(os.path.join(ROOT, "Package.swift")).read()
    with_resources = set()
    for block in re.split(r"\n\s+\.(?:target|executableTarget)\(", package)[1:]:
        name = re.search(r'name:\s*"([^"]+)"', block).group(1)
        body = block.split(".testTarget(", 1)[0]
        if "resources:" in body and not name.endswith("Tests"):
            with_resources.add(name)
    assert {"PresenceRedis", "PresenceHTTP", "PresenceApp"} <= with_resources
    dockerfile = open(os.path.join(ROOT, "ops", "Dockerfile")).read()
    for target in with_resources:
        assert f"presence_{target}.resources" in dockerfile, f"ops/Dockerfile does not copy {target}'s resources"
    assert "COPY --from=build /out/ /usr/local/bin/" in dockerfile


def test_top_level_openapi_is_the_bundled_one():
    top = os.path.join(ROOT, "openapi.yaml")
    bundled = os.path.join(ROOT, "Sources", "PresenceHTTP", "Resources", "openapi.yaml")
    assert os.path.realpath(top) == os.path.realpath(bundled)
    document = yaml.safe_load(open(bundled))  # valid YAML, which the Swift contract test (a line scan) does not check
    assert document["openapi"].startswith("3.1") and "/" in document["paths"]


def test_redis_cluster_script_starts_six_nodes_and_leaves_nothing(tmp_path):
    import random
    base = random.randrange(21000, 28000, 10)
    env = dict(os.environ, REDIS_CLUSTER_BASE_PORT=str(base), REDIS_CLUSTER_BUS_OFFSET="1000", REDIS_CLUSTER_DIR=str(tmp_path / "rc"))
    script = os.path.join(ROOT, "ops", "redis-cluster")
    try:
        up = subprocess.run([script, "up"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert up.returncode == 0, up.stderr
        status = subprocess.run([script, "status"], capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
        lines = status.strip().splitlines()
        assert len(lines) == 6 and all("cluster_state:ok" in line for line in lines), status
        assert sum(" master " in line for line in lines) == 3 and sum(" slave " in line for line in lines) == 3
        url = subprocess.run([script, "url"], capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout.strip()
        assert url == "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in range(base, base + 6))
        # Keys in every slot range are served (redis-cli -c follows MOVED).
        for key in ("a", "b", "c", "{room}:x"):
            subprocess.run(["redis-cli", "-c", "-p", str(base), "set", key, "1"], check=True, capture_output=True)
            got = subprocess.run(["redis-cli", "-c", "-p", str(base + 3), "get", key], check=True, capture_output=True, text=True)
            assert got.stdout.strip() == "1"
    finally:
        subprocess.run([script, "down"], env=env, cwd=ROOT, timeout=60)
    assert not (tmp_path / "rc").exists()
    left = subprocess.run(["pgrep", "-f", f"redis-server 127.0.0.1:{base}"], capture_output=True, text=True).stdout
    assert left == "", left


def test_compose_redis_cluster_profile():
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    services = compose["services"]
    nodes = sorted(s for s in services if s.startswith("redis-node-"))
    assert nodes == [f"redis-node-{i}" for i in range(1, 7)]
    for n in nodes:
        assert services[n]["profiles"] == ["redis-cluster"] and services[n]["hostname"] == n
        assert "--cluster-enabled yes" in " ".join(services[n]["command"])
    create = services["redis-cluster-create"]
    assert create["profiles"] == ["redis-cluster"] and set(create["depends_on"]) == set(nodes)
    assert "--cluster-replicas 1" in " ".join(create["command"])
    # The workers take their Redis from PRESENCE_REDIS_URL, one Redis by default.
    assert services["presence-1"]["environment"]["REDIS_URL"] == "${PRESENCE_REDIS_URL:-redis://redis:6379}"
    out = subprocess.run(["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml"), "--profile", "redis-cluster",
                          "config", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_check_layers_passes_on_the_tree_and_refuses_a_wrong_import(tmp_path):
    import shutil
    import subprocess
    script = os.path.join(ROOT, "ops", "check-layers")
    ok = subprocess.run([script], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # A copy of the tree with three violations: the domain importing the Redis client, a controller importing the
    # Redis stores, and the realtime unit tests declaring TestSupport (which starts Redis).
    shutil.copy(os.path.join(ROOT, "Package.swift"), tmp_path / "Package.swift")
    for folder in ("Sources", "Tests", "bench"):
        shutil.copytree(os.path.join(ROOT, folder), tmp_path / folder,
                        ignore=shutil.ignore_patterns("*.lua", "*.py", "*.js", "*.css", "*.html", "*.png", "*.yaml"))
    domain = tmp_path / "Sources" / "PresenceCore" / "Chat" / "ChatService.swift"
    domain.write_text("import Redis\n" + domain.read_text())
    controller = tmp_path / "Sources" / "PresenceHTTP" / "Controllers" / "RoomsController.swift"
    controller.write_text("@preconcurrency import PresenceRedis\n" + controller.read_text())
    package = (tmp_path / "Package.swift").read_text()
    package = package.replace('name: "PresenceRealtimeTests",\n            dependencies: [\n',
                              'name: "PresenceRealtimeTests",\n            dependencies: [\n                "TestSupport",\n', 1)
    (tmp_path / "Package.swift").write_text(package)
    bad = subprocess.run([script, "--root", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Sources/PresenceCore/Chat/ChatService.swift: PresenceCore imports Redis" in bad.stderr
    assert "Sources/PresenceHTTP/Controllers/RoomsController.swift: PresenceHTTP imports PresenceRedis" in bad.stderr
    assert "Package.swift: PresenceRealtimeTests depends on TestSupport" in bad.stderr
    assert "3 violation(s)" in bad.stderr
