"""Target 7's ceiling: two Python threads against two processes.

    python bench/gil_handoff.py

Every worker makes the same calls, ``leaky_relu(x, 0.01, out=out,
num_threads=1)`` on its own in-cache float32 arrays. Two processes share no
GIL, so their speed-up over one worker is what this machine's two cores give
to two independent callers; what two threads fall short of it is the cost of
handing the GIL over between calls. Each round times one worker, two threads
and two processes on the same number of calls per worker, in rotating order;
speed-ups are ratios of per-call times, medians over the rounds.
"""
import multiprocessing
import statistics
import threading
import time

import numpy as np

import harness
import leaky_kernel as lk
from harness import SLOPE

ROUNDS = 15
LOOP_SECONDS = 0.02  # one worker's calls per round
LOG2_SIZES = (15, 17)


def _calls(size, stream):
    x = harness.random_array(size, "float32", stream)
    out = np.empty_like(x)
    return lambda: lk.leaky_relu(x, SLOPE, out=out, num_threads=1)


def _repeat(call, times):
    for _ in range(times):
        call()


def _process_worker(size, stream, connection):
    """Answer each request for n calls once they are made; stop on None."""
    call = _calls(size, stream)
    call()
    while (times := connection.recv()) is not None:
        _repeat(call, times)
        connection.send(None)


def _in_threads(calls, times):
    threads = [threading.Thread(target=_repeat, args=(call, times)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _in_processes(connections, times):
    for connection in connections:
        connection.send(times)
    for connection in connections:
        connection.recv()


def speed_ups(log2_size):
    """(two threads' speed-up, two processes' speed-up) over one worker."""
    size = 1 << log2_size
    calls = [_calls(size, stream) for stream in range(2)]
    times, _ = harness.calibrate(calls[0], LOOP_SECONDS)
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(2)]
    workers = [
        context.Process(target=_process_worker, args=(size, stream, child), daemon=True)
        for stream, (_, child) in enumerate(pipes)
    ]
    for worker in workers:
        worker.start()
    connections = [parent for parent, _ in pipes]
    variants = {
        "one": lambda: _in_threads(calls[:1], times),
        "threads": lambda: _in_threads(calls, times),
        "processes": lambda: _in_processes(connections, times),
    }
    samples = {name: [] for name in variants}
    try:
        _in_processes(connections, times)  # warm-up: the workers' first loop
        for round_index in range(ROUNDS):
            names = list(variants)
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                variants[name]()
                samples[name].append(time.perf_counter() - start)
    finally:
        for connection in connections:
            connection.send(None)
        for worker in workers:
            worker.join()
    one = statistics.median(samples["one"])
    # Two workers make twice the calls of one, in the measured wall time.
    return tuple(2 * one / statistics.median(samples[name]) for name in ("threads", "processes"))


def main():
    print(f"leaky_relu(x, {SLOPE}, out=out, num_threads=1), float32, medians of {ROUNDS} rounds")
    print("size   two threads   two processes   (speed-up over one worker)")
    for log2_size in LOG2_SIZES:
        threads, processes = speed_ups(log2_size)
        print(f"2^{log2_size}   {threads:11.2f}   {processes:13.2f}")


if __name__ == "__main__":
    main()
