"""Thread counts, OpenMP's controls, forked children and Python threads.

Nothing here measures speed: only which thread count is chosen, that results
are the same whatever it is, that calls neither hang nor go wrong when made
from forked processes or from several Python threads at once, and that a long
call lets other Python threads run.
"""

import os
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal
from leaky_kernel._threads import THREAD_CAP

# Arrays below this many elements run serially.
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE

requires_openmp = pytest.mark.skipif(
    not lk.openmp_enabled(), reason="serial build: always one thread"
)
LARGE = 3 * PARALLEL_MIN_SIZE + 5


@pytest.fixture
def uncapped():
    """Thread counts up to 8 pass unclamped, even on a machine with fewer CPUs,
    so that spans split three and more ways run anywhere."""
    from leaky_kernel import _threads

    previous = _threads.configure_kernels(cap=8)
    yield
    _threads.configure_kernels(cap=previous["cap"])


@requires_openmp
@pytest.mark.parametrize("n", [1, 3, 8, np.int64(2)], ids=repr)
def test_get_num_threads_follows_set_num_threads_up_to_the_cap(n):
    lk.set_num_threads(n)
    assert lk.get_num_threads() == min(n, THREAD_CAP)
    assert type(lk.get_num_threads()) is int


@requires_openmp
@pytest.mark.parametrize("n", [3, 8])
def test_get_num_threads_follows_set_num_threads_uncapped(uncapped, n):
    lk.set_num_threads(n)
    assert lk.get_num_threads() == n


@requires_openmp
def test_set_num_threads_none_returns_to_the_openmp_default(uncapped):
    openmp_default = lk.get_num_threads()
    lk.set_num_threads(openmp_default + 1)
    assert lk.get_num_threads() == openmp_default + 1
    lk.set_num_threads(None)
    assert lk.get_num_threads() == openmp_default


@pytest.mark.skipif(lk.openmp_enabled(), reason="OpenMP build")
def test_serial_build_reports_one_thread_whatever_the_default():
    lk.set_num_threads(4)
    assert lk.get_num_threads() == 1


@requires_openmp
@pytest.mark.parametrize("limit", [1, 3])
def test_threadpool_limits_apply_without_a_package_default(uncapped, make_operand, limit):
    x = make_operand(LARGE, np.float32)
    with threadpool_limits(limits=limit, user_api="openmp"):
        assert lk.get_num_threads() == limit
        assert bits_equal(lk.leaky_relu(x), reference.leaky_relu(x))


@requires_openmp
def test_package_default_takes_precedence_over_threadpool_limits(uncapped):
    lk.set_num_threads(3)
    with threadpool_limits(limits=1, user_api="openmp"):
        assert lk.get_num_threads() == 3


@pytest.mark.parametrize("value", ["1", "3"])
def test_omp_num_threads_is_respected(run_python, value):
    process = run_python(
        "-c",
        "import leaky_kernel as lk; print(lk.get_num_threads())",
        env={"OMP_NUM_THREADS": value},
    )
    assert process.returncode == 0, process.stderr
    expected = min(int(value), THREAD_CAP) if lk.openmp_enabled() else 1
    assert process.stdout.strip() == str(expected)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(uncapped, make_operand, dtype, direction):
    grad_output, x = make_operand(LARGE, dtype), make_operand(LARGE, dtype)

    def call(**kwargs):
        if direction == "forward":
            return lk.leaky_relu(x, -0.2, **kwargs)
        return lk.leaky_relu_backward(grad_output, x, -0.2, **kwargs)

    serial = call(num_threads=1)
    for n_threads in (2, 3, 4, 7):
        assert bits_equal(call(num_threads=n_threads), serial), n_threads
    lk.set_num_threads(3)
    assert bits_equal(call(), serial)


FORK_SCRIPT = textwrap.dedent(
    """
    import multiprocessing
    import os
    import sys

    import numpy as np

    import leaky_kernel as lk
    from leaky_kernel import reference
    from leaky_kernel._dispatch import kernels
    from leaky_kernel._testing import bits_equal, random_operand

    X = random_operand(np.random.default_rng(0), 4 * kernels.PARALLEL_MIN_SIZE + 3, np.float64)
    EXPECTED = reference.leaky_relu(X, 0.1)


    def child_ok():
        # Large calls, default and explicit thread counts: no hang, right
        # results, and the child reports that it runs serially.
        return (
            lk.get_num_threads() == 1
            and bits_equal(lk.leaky_relu(X, 0.1), EXPECTED)
            and bits_equal(lk.leaky_relu(X, 0.1, num_threads=2), EXPECTED)
        )


    def child_main():
        sys.exit(0 if child_ok() else 1)


    if __name__ == "__main__":
        # The parent enters a parallel region before forking: that is what
        # makes GNU libgomp hang a child that enters one too.
        assert bits_equal(lk.leaky_relu(X, 0.1, num_threads=2), EXPECTED)
        parent_threads = lk.get_num_threads()

        child = multiprocessing.get_context("fork").Process(target=child_main)
        child.start()
        child.join()
        assert child.exitcode == 0, f"multiprocessing fork child exited with {child.exitcode}"

        pid = os.fork()
        if pid == 0:
            os._exit(0 if child_ok() else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "os.fork child failed"

        # Forking does not make the parent serial.
        assert lk.get_num_threads() == parent_threads
        assert bits_equal(lk.leaky_relu(X, 0.1, num_threads=2), EXPECTED)
        print("fork ok")
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_children_run_serially_without_hanging(run_python):
    process = run_python("-c", FORK_SCRIPT, timeout=60)
    assert process.returncode == 0, process.stdout + process.stderr
    assert process.stdout.strip() == "fork ok"


@pytest.mark.parametrize("n_threads", [1, 2])
def test_concurrent_calls_from_python_threads(make_operand, n_threads):
    # The kernels run without the GIL; calls from several Python threads at
    # once (each maybe with its own OpenMP team) must not interfere.
    dtypes = [np.float16, np.float32, np.float64, np.float32]
    inputs = [(make_operand(LARGE, dtype), make_operand(LARGE, dtype)) for dtype in dtypes]
    expected = [
        (reference.leaky_relu(x, -0.5), reference.leaky_relu_backward(g, x, -0.5))
        for g, x in inputs
    ]

    def work(g, x):
        return [
            (
                lk.leaky_relu(x, -0.5, num_threads=n_threads),
                lk.leaky_relu_backward(g, x, -0.5, num_threads=n_threads),
            )
            for _ in range(4)
        ]

    pool = ThreadPoolExecutor(max_workers=len(inputs))
    try:
        futures = [pool.submit(work, g, x) for g, x in inputs]
        for future, (forward, backward) in zip(futures, expected):
            for forward_result, backward_result in future.result(timeout=60):
                assert bits_equal(forward_result, forward)
                assert bits_equal(backward_result, backward)
    finally:
        pool.shutdown(wait=False)


def test_concurrent_calls_into_halves_of_one_out(make_operand):
    # Two Python threads, each with two OpenMP threads, write disjoint halves
    # of one array at once.
    x = make_operand((2, LARGE), np.float64)
    out = np.full_like(x, 7.25)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        futures = [
            pool.submit(lk.leaky_relu, x[half], 0.3, out=out[half], num_threads=2)
            for half in (0, 1)
        ]
        for future in futures:
            future.result(timeout=60)
    finally:
        pool.shutdown(wait=False)
    assert bits_equal(out, reference.leaky_relu(x, 0.3))


BIG = 1 << 23  # a one-thread call over this many float32 elements takes milliseconds

GIL_RELEASING_CALLS = {
    "contiguous": lambda x, out: lk.leaky_relu(x, out=out, num_threads=1),
    "strided": lambda x, out: lk.leaky_relu(x[::2], out=out[: x.size // 2], num_threads=1),
    "mask": lambda x, out: lk.leaky_relu_forward_mask(x, out=out, num_threads=1),
}


@pytest.mark.parametrize("call", GIL_RELEASING_CALLS.values(), ids=GIL_RELEASING_CALLS.keys())
def test_long_calls_let_other_python_threads_run(call):
    """From GIL_RELEASE_MIN_SIZE elements the kernels release the GIL: a Python
    thread that only records timestamps keeps ticking through a call. Had the
    call held the GIL, the ticks would pause for all of the kernel's time,
    nearly the whole call with a short switch interval. One call of five with
    no pause of half its length is enough (a core is free: one OpenMP thread)."""
    assert BIG >= kernels.GIL_RELEASE_MIN_SIZE
    x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    out = np.empty_like(x)
    ticks, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    ticker = threading.Thread(target=tick)
    ticker.start()
    windows = []
    try:
        for _ in range(5):
            start = time.perf_counter()
            call(x, out)
            windows.append((start, time.perf_counter()))
    finally:
        stop.set()
        ticker.join()
        sys.setswitchinterval(switch_interval)
    ticks = np.array(ticks)

    def longest_pause_relative(start, end):
        inside = ticks[(ticks > start) & (ticks < end)]
        return np.diff([start, *inside, end]).max() / (end - start)

    assert min(longest_pause_relative(*window) for window in windows) < 0.5


STOPPED_CALLER_SCRIPT = textwrap.dedent(
    """
    import threading

    import numpy as np

    import leaky_kernel as lk
    from leaky_kernel import reference
    from leaky_kernel._dispatch import kernels
    from leaky_kernel._testing import bits_equal, random_operand

    x = random_operand(np.random.default_rng(1), kernels.GIL_RELEASE_MIN_SIZE, np.float32)
    expected = reference.leaky_relu(x, 0.1)
    lk.leaky_relu(x, 0.1, num_threads=1)  # this thread now holds the GIL between calls...
    results = []
    worker = threading.Thread(
        target=lambda: results.extend(lk.leaky_relu(x, 0.1, num_threads=1) for _ in range(200))
    )
    worker.start()
    worker.join()  # ...and stops calling: it waits here with the GIL released
    assert len(results) == 200 and all(bits_equal(result, expected) for result in results)
    print("worker done")
    """
)


def test_a_caller_that_stopped_calling_does_not_hold_up_others(run_python):
    """A thread whose kernel ends while another caller holds the GIL between
    two calls waits for that caller to release it (_gil.h), but only for a
    bounded time: here the other caller never calls again, and the worker's
    calls must still return."""
    process = run_python("-c", STOPPED_CALLER_SCRIPT, timeout=60)
    assert process.returncode == 0, process.stdout + process.stderr
    assert process.stdout.strip() == "worker done"


FORKED_DASK_WORKERS = textwrap.dedent(
    """
    import concurrent.futures
    import multiprocessing

    import numpy as np

    import leaky_kernel as lk
    from leaky_kernel import reference
    from leaky_kernel._testing import bits_equal

    if __name__ == "__main__":
        x = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32)
        slope = np.linspace(-0.5, 0.5, x.size).astype(np.float32)
        expected = reference.leaky_relu(x, slope)
        # The parent enters a parallel region first, with a slope array.
        assert bits_equal(lk.leaky_relu(x, slope, num_threads=2), expected)
        try:
            import dask
            import dask.array as da
        except ImportError:
            print("no dask")
            raise SystemExit
        lazy = lk.leaky_relu(da.from_array(x, chunks=1 << 17), da.from_array(slope, chunks=1 << 17))
        fork = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=fork) as pool:
            assert bits_equal(lazy.compute(scheduler=pool), expected)
        with dask.config.set({"multiprocessing.context": "fork"}):
            assert bits_equal(lazy.compute(scheduler="processes", num_workers=1), expected)
        print("fork ok")
    """
)


@requires_openmp
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_dask_workers_run_the_ufuncs_serially_without_hanging(run_python):
    process = run_python("-c", FORKED_DASK_WORKERS, timeout=60)
    assert process.returncode == 0, process.stdout + process.stderr[-2000:]
    if process.stdout.strip() == "no dask":
        pytest.skip("dask is not installed")
    assert process.stdout.strip() == "fork ok"
