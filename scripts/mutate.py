#!/usr/bin/env python3
"""Mutation runs: does a slip in the code fail a test?

    scripts/mutate.py MUTATIONS.json

MUTATIONS.json is a list of {"id", "file", "old", "new", "filter"}: `old` must occur exactly
once in `file` (a path from the package root); it is replaced by `new`, the tests are built,
`swift test --filter FILTER` runs, and the file is put back, whatever happens. Each line says
KILLED (a test failed, with the first failure), SURVIVED (no test noticed: a missing test,
a bug the mutant fixes, or an equivalent mutant) or TIMED OUT (after the mutation's "timeout",
600 s by default, when the test processes it started are stopped). Not part of the test run; see
docs/testing.md, item 7. Do not edit the files it mutates while it runs, and build again when
it is done: the build it leaves is the last mutant's.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parent.parent

for m in json.loads(Path(sys.argv[1]).read_text()):
    path = root / m["file"]
    source = path.read_text()
    if source.count(m["old"]) != 1:
        print(f"SKIPPED {m['id']}: the text occurs {source.count(m['old'])} times in {m['file']}", flush=True)
        continue
    started = time.monotonic()
    path.write_text(source.replace(m["old"], m["new"]))
    try:
        build = subprocess.run(["swift", "build", "--build-tests"], cwd=root, capture_output=True, text=True)
        errors = [line for line in build.stdout.splitlines() if "error:" in line]
        if build.returncode != 0:
            print(f"DOES NOT BUILD {m['id']}: {errors[0] if errors else build.stderr.strip()[:300]}", flush=True)
            continue
        # In a session of its own, so that a timeout also stops the test process swift test
        # starts (in a process group of its own), and the next mutant's build does not run
        # beside it.
        test = subprocess.Popen(["swift", "test", "--skip-build", "--disable-xctest", "--filter", m["filter"]],
                                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, _ = test.communicate(timeout=m.get("timeout", 600))
        except subprocess.TimeoutExpired:
            subprocess.run(["pkill", "-KILL", "--session", str(test.pid)])
            test.communicate()
            # A mutant that loops for ever is caught, but by no assertion: say so.
            print(f"TIMED OUT {m['id']} after {time.monotonic() - started:.0f} s", flush=True)
            continue
        failures = [line for line in stdout.splitlines() if line.startswith("✘ Test") and "recorded" in line]
        verdict = "KILLED" if test.returncode != 0 else "SURVIVED"
        print(f"{verdict} {m['id']} ({time.monotonic() - started:.0f} s) {failures[0][:200] if failures else ''}", flush=True)
    finally:
        path.write_text(source)
