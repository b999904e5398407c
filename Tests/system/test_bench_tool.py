"""bench/run, the one entry point of the benchmarks: it lists every benchmark in bench/ and refuses unknown names.
Cheap: no benchmark is run and nothing is built."""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "bench")


def run(*args):
    return subprocess.run([os.path.join(BENCH, "run"), *args], capture_output=True, text=True, cwd=ROOT, timeout=30)


def benchmark_files():
    """Every benchmark entry point: the executables directly in bench/ without an extension, bench/run aside."""
    return sorted(name for name in os.listdir(BENCH)
                  if name != "run" and "." not in name and os.path.isfile(os.path.join(BENCH, name))
                  and os.access(os.path.join(BENCH, name), os.X_OK))


def test_list_names_every_benchmark_with_a_description():
    result = run("--list")
    assert result.returncode == 0, result.stderr
    listed = {}
    for line in result.stdout.splitlines():
        m = re.match(r"(\S+)\s+(\S.*)$", line)
        if m:
            listed[m.group(1)] = m.group(2)
    names = benchmark_files()
    assert len(names) >= 15, names
    for name in names:
        assert name in listed, f"bench/run --list does not list {name}"
        assert listed[name] != "(no summary line)", f"bench/{name} has no '# summary:' line"
    assert set(listed) == set(names), "bench/run --list lists something that is not a benchmark in bench/"
    # Each has a quick (smallest) run, shown in the list.
    for name in names:
        assert f"quick: bench/run {name}" in result.stdout, f"bench/{name} has no '# quick:' line"


def test_unknown_benchmark_is_refused_clearly():
    result = run("no-such-benchmark")
    assert result.returncode != 0
    assert "unknown benchmark 'no-such-benchmark'" in result.stderr
    assert "bench/run --list" in result.stderr
    assert result.stdout == ""


def test_no_benchmark_builds_or_lives_in_ops():
    assert not os.path.exists(os.path.join(ROOT, "ops", "bench")), "ops/bench is gone: benchmarks live in bench/"
    for name in os.listdir(BENCH):
        path = os.path.join(BENCH, name)
        if name == "run" or not os.path.isfile(path):
            continue
        text = open(path, errors="replace").read()
        assert "swift build" not in text, f"bench/{name} builds by itself; bench/run builds once"
        assert "ops/bench" not in text, f"bench/{name} still names ops/bench"


def test_help_of_one_benchmark_runs_nothing():
    result = run("limiter", "--help")
    assert result.returncode == 0, result.stderr
    assert "bench/run limiter" in result.stdout and "quick" in result.stdout
    assert "building" not in result.stderr


def test_record_appends_under_runs(tmp_path):
    sys.path.insert(0, BENCH)
    try:
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(BENCH, "run"))
        spec = importlib.util.spec_from_loader("bench_run", loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    finally:
        sys.path.remove(BENCH)
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\nText.\n")
    module.record(str(page), "bench/run limiter 1", ["a", '{"x": 1}'])
    module.record(str(page), "bench/run limiter 2", ["b"])
    text = page.read_text()
    assert text.startswith("# Performance\n\nText.\n\n## Runs\n")
    assert text.index("bench/run limiter 1") < text.index("bench/run limiter 2")
    assert text.count("## Runs") == 1
    assert re.search(r"### \d{4}-\d\d-\d\d \d\d:\d\d UTC · `[^`]+`", text)
    assert module.summary(["x\n", '{"ok": true}\n', "\n"], 10) == ['{"ok": true}']
    assert module.summary([f"{i}\n" for i in range(20)], 3) == ["17", "18", "19"]
