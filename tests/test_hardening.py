"""Cases found by hostile testing (issue 11): inputs, environments and thread
counts that used to kill the process, and calls that gave silently wrong
results. Whatever could crash runs in a child process, so that a regression
fails its test instead of ending the suite."""

import copy
import pickle
import sys
import textwrap

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal, kernel_configuration
from leaky_kernel._threads import THREAD_CAP

requires_openmp = pytest.mark.skipif(not lk.openmp_enabled(), reason="serial build")

# ---------------------------------------------------------------- thread counts

ABSURD_THREAD_COUNTS = textwrap.dedent(
    """
    import numpy as np
    import leaky_kernel as lk
    from leaky_kernel import reference
    from leaky_kernel._testing import bits_equal, random_operand

    n = {n}
    rng = np.random.default_rng(0)
    for size in (1 << 15, 3 * (1 << 15) + 7):
        x = random_operand(rng, size, np.float32)
        g = random_operand(rng, size, np.float32)
        assert bits_equal(lk.leaky_relu(x, 0.1, num_threads=n), reference.leaky_relu(x, 0.1))
        assert bits_equal(lk.leaky_relu_backward(g, x, 0.1, num_threads=n),
                          reference.leaky_relu_backward(g, x, 0.1))
        y, mask = lk.leaky_relu_forward_mask(x, 0.1, num_threads=n)
        assert bits_equal(y, reference.leaky_relu(x, 0.1))
        assert bits_equal(lk.leaky_relu_backward_mask(g, mask, 0.1, num_threads=n),
                          reference.leaky_relu_backward(g, x, 0.1))
        layer = lk.LeakyReLU(0.1, num_threads=n)
        assert bits_equal(layer(x), reference.leaky_relu(x, 0.1))
        assert bits_equal(layer.backward(g), reference.leaky_relu_backward(g, x, 0.1))
        lk.set_num_threads(n)
        assert bits_equal(lk.leaky_relu(x[::-1], 0.1), reference.leaky_relu(x[::-1], 0.1))
        lk.set_num_threads(None)
    print("ok")
    """
)


@pytest.mark.parametrize("n", [100_000, 32768, 2**31 - 1])
def test_absurd_thread_counts_are_clamped_everywhere(run_python, n):
    process = run_python("-c", ABSURD_THREAD_COUNTS.format(n=n))
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "ok"


def test_an_absurd_omp_num_threads_is_clamped(run_python):
    script = ABSURD_THREAD_COUNTS.format(n=None) + "print(lk.get_num_threads())\n"
    process = run_python("-c", script, env={"OMP_NUM_THREADS": "100000"})
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.split() == ["ok", str(THREAD_CAP if lk.openmp_enabled() else 1)]


COUNT_OS_THREADS = textwrap.dedent(
    """
    import os
    import numpy as np
    import leaky_kernel as lk

    def os_threads():
        return len(os.listdir("/proc/self/task"))

    before = os_threads()
    lk.leaky_relu(np.ones({size}, np.float32), num_threads=500)
    print(os_threads() - before)
    """
)


@requires_openmp
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
@pytest.mark.parametrize("size", [1 << 15, 1 << 20])
def test_a_call_starts_no_more_threads_than_cpus_or_spans_of_work(run_python, size):
    # 2^15 elements are two spans of work: one more OS thread at most.
    process = run_python("-c", COUNT_OS_THREADS.format(size=size))
    assert process.returncode == 0, process.stderr
    spans = size // kernels.get_configuration()["min_thread_elements"]
    assert 0 <= int(process.stdout) <= min(THREAD_CAP, spans) - 1


# ------------------------------------------------------------ small stacks

SMALL_STACK_CALLS = textwrap.dedent(
    """
    import threading
    import numpy as np
    import leaky_kernel as lk
    from leaky_kernel import reference
    from leaky_kernel._testing import bits_equal, random_operand

    def calls():
        rng = np.random.default_rng(0)
        for dtype in (np.float32, np.float64):
            m = random_operand(rng, (301, 3 * 1024 + 1), dtype)
            g = random_operand(rng, m.shape, dtype)
            for view_x, view_g in ((m[:, ::3], g[:, ::3]), (m[:, ::2], g[:, ::2]), (m.T, g.T)):
                for threads in (1, 2):
                    assert bits_equal(lk.leaky_relu(view_x, 0.1, num_threads=threads),
                                      reference.leaky_relu(view_x, 0.1))
                    assert bits_equal(lk.leaky_relu_backward(view_g, view_x, 0.1,
                                                             num_threads=threads),
                                      reference.leaky_relu_backward(view_g, view_x, 0.1))
                    out = np.empty(view_x.shape, dtype)[:, ::-1]
                    lk.leaky_relu(view_x, 0.1, out=out, num_threads=threads)
                    assert bits_equal(out, reference.leaky_relu(view_x, 0.1))
            y, mask = lk.leaky_relu_forward_mask(m[:, ::3], 0.1)
            assert bits_equal(lk.leaky_relu_backward_mask(g[:, ::3], mask, 0.1),
                              reference.leaky_relu_backward(g[:, ::3], m[:, ::3], 0.1))
        results.append("ok")

    results = []
    {run}
    print(results[0])
    """
)
IN_A_SMALL_THREAD = "\n".join([
    "threading.stack_size(64 * 1024)",
    "thread = threading.Thread(target=calls)",
    "thread.start()",
    "thread.join()",
])


def test_every_path_works_in_a_64_kib_python_thread_stack(run_python):
    process = run_python("-c", SMALL_STACK_CALLS.format(run=IN_A_SMALL_THREAD))
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "ok"


def test_every_path_works_with_64_kib_openmp_stacks(run_python):
    process = run_python(
        "-c", SMALL_STACK_CALLS.format(run="calls()"), env={"OMP_STACKSIZE": "64K"}
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "ok"


# ---------------------------------------------------------- subinterpreters

IN_A_SUBINTERPRETER = textwrap.dedent(
    """
    try:
        import _xxsubinterpreters as interpreters
    except ImportError:
        import _interpreters as interpreters
    interpreter = interpreters.create()
    interpreters.run_string(interpreter, '''
    import warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import leaky_kernel as lk
    from leaky_kernel import reference
    from leaky_kernel._testing import bits_equal, random_operand
    x = random_operand(np.random.default_rng(0), 5 * (1 << 15) + 3, np.float32)
    assert bits_equal(lk.leaky_relu(x, 0.1, num_threads=2), reference.leaky_relu(x, 0.1))
    y, mask = lk.leaky_relu_forward_mask(x, 0.1, num_threads=2)
    assert bits_equal(lk.leaky_relu_backward_mask(x, mask, 0.1, num_threads=2),
                      reference.leaky_relu_backward(x, x, 0.1))
    assert lk.get_num_threads() == 1
    ''')
    print("ok")
    """
)


TWICE = textwrap.dedent(
    """
    try:
        import _xxsubinterpreters as interpreters
    except ImportError:
        import _interpreters as interpreters
    import leaky_kernel
    interpreter = interpreters.create()
    try:
        interpreters.run_string(interpreter, "import leaky_kernel")
    except Exception as exc:
        print(exc)
    """
)


def _has_subinterpreters():
    import importlib.util

    return any(importlib.util.find_spec(m) for m in ("_xxsubinterpreters", "_interpreters"))


@pytest.mark.skipif(not _has_subinterpreters(), reason="no subinterpreter module")
def test_parallel_sized_calls_work_in_a_subinterpreter(run_python):
    # They used to abort the process ("Fatal Python error: PyEval_SaveThread");
    # in a subinterpreter the kernels run serially.
    process = run_python("-c", IN_A_SUBINTERPRETER)
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "ok"


@pytest.mark.skipif(not _has_subinterpreters(), reason="no subinterpreter module")
def test_a_second_interpreter_importing_the_package_gets_an_import_error(run_python):
    # Cython modules load once per process: an ImportError, never an abort.
    process = run_python("-c", TWICE)
    assert process.returncode == 0, process.stderr[-2000:]
    assert "ImportError" in process.stdout


# --------------------------------------------------------------- layer copies

X = np.array([1.0, -1.0, 2.0, -2.0])
ONES = np.ones(4)


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy,
                                       lambda layer: pickle.loads(pickle.dumps(layer))],
                         ids=["copy", "deepcopy", "pickle"])
def test_a_layer_copy_shares_no_mask_in_either_direction(duplicate):
    a = lk.LeakyReLU(0.1)
    a(X)
    b = duplicate(a)
    b(-X)
    assert bits_equal(a.backward(ONES), reference.leaky_relu_backward(ONES, X, 0.1))
    assert bits_equal(b.backward(ONES), reference.leaky_relu_backward(ONES, -X, 0.1))
    a(-X)
    a(X)
    assert bits_equal(b.backward(ONES), reference.leaky_relu_backward(ONES, -X, 0.1))


def test_a_copy_of_a_fresh_layer_works():
    b = copy.copy(lk.LeakyReLU(0.1, inplace=False))
    assert bits_equal(b(X), reference.leaky_relu(X, 0.1))


# ------------------------------------------------- slopes that overflow a dtype

OVERFLOWING = [(np.float32, 1e39), (np.float32, -3.5e38), (np.float16, 1e39)]


def overflowing_calls(impl, x, slope):
    """Every function that takes a slope, called on x."""
    g = np.ones_like(x)
    mask = np.packbits((x > 0).reshape(-1), bitorder="little")
    calls = {
        "leaky_relu": lambda: impl.leaky_relu(x, slope),
        "leaky_relu_backward": lambda: impl.leaky_relu_backward(g, x, slope),
        "leaky_relu_forward_mask": lambda: impl.leaky_relu_forward_mask(x, slope),
        "leaky_relu_backward_mask": lambda: impl.leaky_relu_backward_mask(g, mask, slope),
    }
    if impl is lk:
        calls["LeakyReLU"] = lambda: lk.LeakyReLU(slope)(x)
    return calls


@pytest.mark.parametrize("impl", [lk, reference], ids=["compiled", "reference"])
@pytest.mark.parametrize("dtype, slope", OVERFLOWING)
@pytest.mark.parametrize("size", [2, 3 * (1 << 15)])
def test_a_slope_that_overflows_the_compute_dtype_is_a_value_error(impl, dtype, slope, size):
    # It used to give NaN at x == 0 and inf elsewhere, silently.
    x = np.zeros(size, dtype)
    x[1] = -1
    for name, call in overflowing_calls(impl, x, slope).items():
        with pytest.raises(ValueError, match="^negative_slope must be finite in float32"):
            call()


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_an_overflowing_alias_is_named_and_out_is_untouched(direction):
    x = np.array([0.0, -1.0], np.float32)
    out = np.full(2, 7, np.float32)
    with pytest.raises(ValueError, match="^alpha must be finite in float32"):
        if direction == "forward":
            lk.leaky_relu(x, alpha=1e39, out=out)
        else:
            lk.leaky_relu_backward(x, x, alpha=1e39, out=out)
    assert out.tolist() == [7, 7]


def test_the_same_slope_is_valid_in_float64():
    x = np.array([0.0, -1.0, 2.0])
    assert bits_equal(lk.leaky_relu(x, 1e39), reference.leaky_relu(x, 1e39))
    assert lk.leaky_relu(x, 1e39).tolist() == [0.0, -1e39, 2.0]


# ------------------------------------------------------------ error messages


def bad_calls(big):
    """Calls with one bad argument each, that argument a large array where
    it can be."""
    x = np.ones(1000, np.float32)
    return [
        lambda: lk.leaky_relu(x, big[:999]),
        lambda: lk.leaky_relu(x, alpha=big[:999]),
        lambda: lk.leaky_relu(x, num_threads=big),
        lambda: lk.leaky_relu(big.astype(complex)),
        lambda: lk.leaky_relu(x, out=big.astype(np.int64)),
        lambda: lk.leaky_relu(x, out=big.tolist()),
        lambda: lk.leaky_relu_backward(big, x[:999]),
        lambda: lk.leaky_relu_backward(x, x, x_is_output=big),
        lambda: lk.leaky_relu_backward_mask(x, big),
        lambda: lk.LeakyReLU(inplace=big),
        lambda: lk.LeakyReLU(big.astype(complex)),
        lambda: lk.leaky_relu([list(range(1000)), [1]]),
    ]


@pytest.mark.parametrize("index", range(len(bad_calls(np.zeros(1)))))
def test_error_messages_are_short_and_never_print_an_array(index):
    big = np.arange(1000, dtype=np.float64) + 123456.5
    with pytest.raises((TypeError, ValueError)) as info:
        bad_calls(big)[index]()
    message = str(info.value)
    assert len(message.splitlines()) <= 2, message
    assert len(message) <= 300, message
    assert "123456" not in message and "123457" not in message, message


# ------------------------------------------- tuning changed during a kernel


@requires_openmp
def test_changing_the_tuning_while_kernels_run_changes_no_result():
    import threading

    x = np.random.default_rng(0).standard_normal(1 << 20).astype(np.float32)
    want = reference.leaky_relu(x, 0.1)
    stop = threading.Event()

    def flip():
        variants = [{"stream_out_min_bytes": 0, "prefetch": "nta", "min_thread_elements": 1024},
                    {"stream_out_min_bytes": 2**62, "prefetch": "none",
                     "min_thread_elements": 1 << 14}]
        i = 0
        while not stop.is_set():
            kernels.configure(**kernel_configuration(variants[i % 2]))
            i += 1

    previous = kernels.get_configuration()
    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        out = np.empty_like(x)
        for _ in range(20):
            assert bits_equal(lk.leaky_relu(x, 0.1, out=out, num_threads=2), want)
    finally:
        stop.set()
        flipper.join()
        kernels.configure(**previous)

