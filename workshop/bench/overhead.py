#!/usr/bin/env python3
"""What the lab itself costs per invocation, against its peer and the floor.

Module 2's reference, GET /health, closed loop (wrk), one target after the
other on this machine, in one run:

- the lab: `cargo workshop serve 2 --solution` (API Gateway, the fleet, the
  Runtime API, the real bootstrap);
- `cargo lambda watch`: cargo-lambda's local emulator, the peer;
- the floor: the same router under axum's own server (workshop/bench/floor),
  with no Lambda in between.

Prints throughput and latency at 1 and 16 connections, the ratios the lab
is held to (at least 3x cargo-lambda, within 3x of the floor) and the CPU
each part of the lab used per invocation (the lab process, the function's
processes), read from /proc.

    workshop/bench/overhead.py                 # 10 s per measurement
    SECONDS_PER_RUN=5 workshop/bench/overhead.py
    TARGETS=lab,floor workshop/bench/overhead.py   # without cargo-lambda

Needs wrk (Debian: `apt-get install wrk`) and, for the peer, cargo-lambda
(`pip install cargo-lambda`). Linux only (CPU times from /proc).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "10"))
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "1,16").split(",")]
TARGETS = os.environ.get("TARGETS", "lab,watch,floor").split(",")
PORTS = {"lab": 3581, "watch": 9581, "floor": 3681}
NAMES = {"lab": "lab (serve 2)", "watch": "cargo lambda watch", "floor": "floor (axum::serve)"}
TICK = os.sysconf("SC_CLK_TCK")
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def cpu_seconds(pid):
    """User + system CPU of one process so far, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def descendants(pid):
    """Every live process below `pid`."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def machine_busy():
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def wait_for(url, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    fail(f"no answer from {url} after {seconds} s")


def to_us(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1, "ms": 1000, "s": 1_000_000, "m": 60_000_000}[unit]


def wrk(url, connections, seconds):
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # The distribution's lines, not a "+/- Stdev" column that ends in 50%.
    p50 = to_us(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))
    p99 = to_us(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": requests, "rate": rate, "p50": p50, "p99": p99,
            "errors": int(errors.group(1)) if errors else 0}


def start(target):
    port = PORTS[target]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if target == "lab":
        binary = os.path.join(TARGET_DIR, "release", "workshop")
        process = subprocess.Popen([binary, "serve", "2", "--solution", "--port", str(port)],
                                   cwd=ROOT, **quiet)
    elif target == "watch":
        process = subprocess.Popen(
            ["cargo", "lambda", "watch", "--release", "--quiet", "--ignore-changes",
             "--invoke-port", str(port), "--bin", "module-2-solution"],
            cwd=os.path.join(ROOT, "solutions", "module-2"), start_new_session=True, **quiet)
    else:
        binary = os.path.join(TARGET_DIR, "release", "module-2-floor")
        process = subprocess.Popen([binary, str(port)], cwd=ROOT, **quiet)
    url = f"http://127.0.0.1:{port}/health"
    wait_for(url)
    return process, url


def stop(target, process):
    if target == "watch":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def measure(target, connections):
    process, url = start(target)
    wrk(url, connections, 2)  # warm: the environments it needs are started
    lab_before = cpu_seconds(process.pid)
    below = descendants(process.pid)
    below_before = {pid: cpu_seconds(pid) for pid in below}
    busy_before = machine_busy()
    result = wrk(url, connections, SECONDS)
    busy_after = machine_busy()
    lab_cpu = cpu_seconds(process.pid) - lab_before
    below_cpu = sum(cpu_seconds(pid) - before for pid, before in below_before.items())
    stop(target, process)
    n = max(result["requests"], 1)
    result["own_us"] = lab_cpu / n * 1e6
    result["below_us"] = below_cpu / n * 1e6
    result["busy"] = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1)
    return result


def main():
    if not shutil.which("wrk"):
        fail("wrk is not installed: apt-get install wrk")
    if "watch" in TARGETS and not shutil.which("cargo-lambda"):
        fail("cargo-lambda is not installed: pip install cargo-lambda (or TARGETS=lab,floor)")
    print("Building the lab, module 2's reference and the floor (release)…", file=sys.stderr)
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "workshop",
                    "-p", "module-2-solution", "-p", "bench-floor"], cwd=ROOT, check=True)
    if "watch" in TARGETS:
        subprocess.run(["cargo", "lambda", "build", "--release", "--quiet", "--bin",
                        "module-2-solution"], cwd=os.path.join(ROOT, "solutions", "module-2"),
                       check=True, stdout=subprocess.DEVNULL)
    results = {}
    for connections in CONNECTIONS:
        for target in TARGETS:
            print(f"  {NAMES[target]}, {connections} connection(s), {SECONDS} s…", file=sys.stderr)
            results[(target, connections)] = measure(target, connections)

    print(f"\nGET /health of module 2's reference, wrk closed loop, {SECONDS} s each, "
          f"{os.cpu_count()} cores\n")
    header = f"| connections | {' | '.join(NAMES[t] for t in TARGETS)} |"
    print(header)
    print("|---" * (len(TARGETS) + 1) + "|")
    for connections in CONNECTIONS:
        cells = []
        for target in TARGETS:
            r = results[(target, connections)]
            errors = f", {r['errors']} non-2xx" if r["errors"] else ""
            cells.append(f"{r['rate']:,.0f} req/s, p50 {r['p50']:,.0f} us, "
                         f"p99 {r['p99']:,.0f} us{errors}")
        print(f"| {connections} | {' | '.join(cells)} |")

    if "lab" in TARGETS:
        print()
        for connections in CONNECTIONS:
            lab = results[("lab", connections)]
            line = [f"{connections} connection(s):"]
            if "watch" in TARGETS:
                watch = results[("watch", connections)]
                line.append(f"lab {lab['rate'] / watch['rate']:.1f}x cargo-lambda's throughput "
                            f"(target: at least 3x);")
            if "floor" in TARGETS:
                floor = results[("floor", connections)]
                line.append(f"the floor {floor['rate'] / lab['rate']:.1f}x the lab's "
                            f"(target: within 3x);")
            line.append(f"lab CPU {lab['own_us']:.0f} us per invocation (target: under 100 us), "
                        f"the function's {lab['below_us']:.0f} us; machine {lab['busy']:.0%} busy")
            print(" ".join(line))


if __name__ == "__main__":
    main()
