# Python's twin of fresh-procpool.mjs: from the first line (the import of
# multiprocessing included) to a first result and the pool joined.
import time

t0 = time.perf_counter()
import json  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402

imported = time.perf_counter()


def inc(x):
    return x + 1


if __name__ == "__main__":
    pool = multiprocessing.Pool(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    assert pool.apply(inc, (1,)) == 2
    pool.close()
    pool.join()
    print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "importMs": (imported - t0) * 1000}))
