"""Python's multiprocessing.Pool on the benchmark's workloads (driven by bench/run.ts).

Usage: python3 py_bench.py WORKLOAD 'JSON params'  ->  one JSON line on stdout.
Each run is a fresh interpreter, as each Node measurement is a fresh process.
The pool uses the platform's default start method (fork on Linux).
"""
import json
import multiprocessing
import os
import resource
import statistics
import sys
import time


def inc(x):
    return x + 1


def echo(value):
    return value


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def now():
    return time.perf_counter()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def startup(p):
    samples = []
    for _ in range(p["samples"]):
        t0 = now()
        pool = multiprocessing.Pool(p["processes"])
        assert pool.apply(inc, (1,)) == 2
        pool.close()
        pool.join()
        samples.append((now() - t0) * 1000)
    return {"ms": statistics.median(samples), "samples": samples}


def latency(p):
    with multiprocessing.Pool(p["processes"]) as pool:
        for i in range(p["warmup"]):
            pool.apply(inc, (i,))
        times = []
        for i in range(p["n"]):
            t0 = now()
            pool.apply(inc, (i,))
            times.append((now() - t0) * 1e6)
    times.sort()
    return {"p50": times[len(times) // 2], "p99": times[min(len(times) - 1, int(len(times) * 0.99))]}


def apply(p):
    n = p["n"]
    with multiprocessing.Pool(p["processes"]) as pool:
        pool.apply(inc, (0,))
        t0 = now()
        pending = [pool.apply_async(inc, (i,)) for i in range(n)]
        total = sum(r.get() for r in pending)
        elapsed = now() - t0
    assert total == n * (n + 1) // 2
    return {"itemsPerSec": n / elapsed}


def mapping(p, chunksize):
    n = p["n"]
    items = list(range(n))
    with multiprocessing.Pool(p["processes"]) as pool:
        pool.apply(inc, (0,))
        t0 = now()
        results = pool.map(inc, items, chunksize) if chunksize else pool.map(inc, items)
        elapsed = now() - t0
    assert sum(results) == n * (n + 1) // 2
    return {"itemsPerSec": n / elapsed}


def cpu(p):
    """Serial first, in this process, then the pools: each speedup pairs runs made moments apart."""
    items = [p["fib"]] * p["items"]
    t0 = now()
    for n in items:
        fib(n)
    serial_ms = (now() - t0) * 1000
    ms, speedup = {}, {}
    for processes in p["processes"]:
        with multiprocessing.Pool(processes) as pool:
            pool.apply(inc, (0,))
            t0 = now()
            pool.map(fib, items)
            ms[str(processes)] = (now() - t0) * 1000
            speedup[str(processes)] = serial_ms / ms[str(processes)]
    return {"serialMs": serial_ms, "ms": ms, "speedup": speedup}


def echo_run(p):
    n = p["n"]
    data = os.urandom(p["bytes"])
    arrays = [bytes(bytearray(data)) for _ in range(n)]  # distinct objects, as on the Node side
    with multiprocessing.Pool(p["processes"]) as pool:
        pool.apply(echo, (b"x",))
        t0 = now()
        pending = [pool.apply_async(echo, (a,)) for a in arrays]
        for r in pending:
            assert len(r.get()) == len(data)
        elapsed = now() - t0
    return {"mibPerSec": n * p["bytes"] / 2**20 / elapsed}


def rss(p):
    with multiprocessing.Pool(p["processes"]) as pool:
        for r in [pool.apply_async(inc, (i,)) for i in range(4 * p["processes"])]:
            r.get()
        time.sleep(p["settleMs"] / 1000)
        values = [rss_mib(child.pid) for child in multiprocessing.active_children()]
    return {"mib": statistics.median(values)}


def imap(p):
    n = p["n"]

    def items():
        for i in range(n):
            yield i

    with multiprocessing.Pool(p["processes"]) as pool:
        pool.apply(inc, (0,))
        t0 = now()
        total = 0
        for value in pool.imap(inc, items()):
            total += value
        elapsed = now() - t0
    assert total == n * (n + 1) // 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"itemsPerSec": n / elapsed, "peakRssMib": peak}


def crash():
    os._exit(1)


def after_crash(p):
    with multiprocessing.Pool(p["processes"]) as pool:
        pool.apply(inc, (0,))
        before = {child.pid for child in multiprocessing.active_children()}
        # The crashed item itself never settles in Python's Pool: not waited for.
        pool.apply_async(crash)
        # Until the crash is seen: one of the children is gone (the pool then starts another).
        while before <= {child.pid for child in multiprocessing.active_children() if child.exitcode is None}:
            time.sleep(0.001)
        t0 = now()
        results = [r.get() for r in [pool.apply_async(inc, (i,)) for i in range(10)]]
        ms = (now() - t0) * 1000
        assert sum(results) == 55
        pool.terminate()
    return {"ms": ms}


WORKLOADS = {
    "after-crash": after_crash,
    "map-chunk": lambda p: mapping(p, p["chunksize"]),
    "startup": startup,
    "latency": latency,
    "apply": apply,
    "map-c1": lambda p: mapping(p, 1),
    "map-default": lambda p: mapping(p, None),
    "cpu": cpu,
    "echo": echo_run,
    "rss": rss,
    "imap": imap,
}

if __name__ == "__main__":
    params = json.loads(sys.argv[2])
    print(json.dumps(WORKLOADS[sys.argv[1]](params)))
