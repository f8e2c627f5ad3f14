"""Target 7's ceiling: two Python threads against two processes.

    python bench/gil_handoff.py

Every worker makes the same calls, ``leaky_relu(x, 0.01, out=out,
num_threads=1)`` on its own in-cache float32 arrays. Two processes share no
GIL, so their speed-up over one worker is what this machine's two cores give
to two independent callers; what two threads fall short of it is the cost of
handing the GIL over between calls. Each round times one worker, two threads
and two processes on the same number of calls per worker
(harness.time_interleaved: warmed up, rotating order, medians over the rounds);
speed-ups are ratios of per-call times. Threads start together, as in target 7.
"""
import multiprocessing
from functools import partial

import numpy as np

import harness
import leaky_kernel as lk
from harness import SLOPE, Entry, TimingSettings

# Every entry is one loop of calls lasting tens of milliseconds, timed once per round.
ROUNDS = TimingSettings(min_rounds=15, max_rounds=15)
LOOP_SECONDS = 0.02  # one worker's calls per round
LOG2_SIZES = (15, 17)


def _calls(size, stream):
    x = harness.random_array(size, "float32", stream)
    out = np.empty_like(x)
    return lambda: lk.leaky_relu(x, SLOPE, out=out, num_threads=1)


def _process_worker(size, stream, connection):
    """Make n calls for each request n, then answer; stop on None."""
    call = _calls(size, stream)
    while (times := connection.recv()) is not None:
        for _ in range(times):
            call()
        connection.send(None)


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
    entries = {
        "one": Entry(partial(harness.run_in_threads, calls[:1], times)),
        "threads": Entry(partial(harness.run_in_threads, calls, times)),
        "processes": Entry(partial(_in_processes, connections, times)),
    }
    try:
        medians = harness.medians(entries, ROUNDS)
    finally:
        for connection in connections:
            connection.send(None)
        for worker in workers:
            worker.join()
    # Two workers make twice the calls of one, in the measured wall time.
    return tuple(2 * medians["one"] / medians[name] for name in ("threads", "processes"))


def main():
    print(f"leaky_relu(x, {SLOPE}, out=out, num_threads=1), float32, medians of 15 rounds")
    print("size   two threads   two processes   (speed-up over one worker)")
    for log2_size in LOG2_SIZES:
        threads, processes = speed_ups(log2_size)
        print(f"2^{log2_size}   {threads:11.2f}   {processes:13.2f}")


if __name__ == "__main__":
    main()
