"""Bad arguments raise TypeError or ValueError naming the argument, and change
nothing: neither out nor any input.

Messages are pinned with match=. The oracle shares the argument rules of the
compiled functions, so it is held to the same messages where it takes the
argument.
"""

import math
import re

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal
from leaky_kernel._threads import THREAD_CAP
from leaky_kernel._validation import describe

# Arrays below this many elements run serially.
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE

IMPLEMENTATIONS = [pytest.param(reference, id="reference"), pytest.param(lk, id="compiled")]
DIRECTIONS = ["forward", "backward"]
SUPPORTED = "supported: float16, float32, float64, bool and integers (computed in float64)"


class Operands:
    """grad_output, x and out for a (2, 3) float32 call, remembered so that a
    test can check that a failed call left them as they were."""

    def __init__(self, rng):
        self.grad_output = rng.standard_normal((2, 3)).astype(np.float32)
        self.x = rng.standard_normal((2, 3)).astype(np.float32)
        self.out = np.full((2, 3), 7.25, dtype=np.float32)
        self._before = [a.copy() for a in (self.grad_output, self.x, self.out)]

    def call(self, impl, direction, **kwargs):
        """The call, with out= for the compiled functions (the oracle has none)."""
        if impl is lk:
            kwargs.setdefault("out", self.out)
        if direction == "forward":
            return impl.leaky_relu(self.x, **kwargs)
        return impl.leaky_relu_backward(self.grad_output, self.x, **kwargs)

    def assert_unchanged(self):
        for now, before in zip((self.grad_output, self.x, self.out), self._before):
            assert bits_equal(now, before)


@pytest.fixture
def operands(rng):
    return Operands(rng)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", ["negative_slope", "alpha"])
@pytest.mark.parametrize(
    "slope, error, message",
    [
        ("a", TypeError, "{name} must be a real number, got 'a' of type str"),
        (1 + 2j, TypeError, "{name} must be a real number, got (1+2j) of type complex"),
        (
            np.array([0.1j]),
            TypeError,
            "{name} must be a real number or an array of them, "
            "got ndarray of shape (1,) and dtype complex128",
        ),
        (
            np.full(7, 0.1),
            ValueError,
            "{name} of shape (7,) does not broadcast to the result's shape",
        ),
        (
            [[0.1], [np.nan]],
            ValueError,
            "{name} must be finite in float32, the dtype this call computes in; "
            "some of its values are not",
        ),
        # bool is an int in Python, but no slope.
        (True, TypeError, "{name} must be a real number, got True of type bool"),
        (math.nan, ValueError, "{name} must be finite, got nan"),
        (np.float32("nan"), ValueError, "{name} must be finite, got nan"),
        (math.inf, ValueError, "{name} must be finite, got inf"),
        (-math.inf, ValueError, "{name} must be finite, got -inf"),
        (10**400, ValueError, "{name} must be finite, got inf"),  # beyond float range
    ],
    ids=[
        "str", "complex", "complex-array", "array-not-broadcasting", "array-with-nan", "bool",
        "nan", "float32-nan", "inf", "-inf", "huge-int",
    ],
)
def test_bad_slope(operands, impl, direction, name, slope, error, message):
    with pytest.raises(error, match=re.escape(message.format(name=name))):
        operands.call(impl, direction, **{name: slope})
    operands.assert_unchanged()


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_negative_slope_none_is_rejected(operands, impl, direction):
    # alpha=None means "alpha not given"; negative_slope has no such meaning.
    message = "negative_slope must be a real number, got None of type NoneType"
    with pytest.raises(TypeError, match=re.escape(message)):
        operands.call(impl, direction, negative_slope=None)
    operands.assert_unchanged()


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
# 0.01 equals the default but is given explicitly: still both.
@pytest.mark.parametrize("negative_slope", [0.2, 0.01])
def test_slope_and_its_alias_together(operands, impl, direction, negative_slope):
    with pytest.raises(TypeError, match="give negative_slope or its alias alpha, not both"):
        operands.call(impl, direction, negative_slope=negative_slope, alpha=0.1)
    operands.assert_unchanged()


NUM_THREADS_ERRORS = [
    (0, ValueError, "num_threads must be a positive int or None, got 0"),
    (-1, ValueError, "num_threads must be a positive int or None, got -1"),
    (2.0, TypeError, "num_threads must be a positive int or None, got 2.0"),
    (True, TypeError, "num_threads must be a positive int or None, got True"),
    ("2", TypeError, "num_threads must be a positive int or None, got '2'"),
]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("num_threads, error, message", NUM_THREADS_ERRORS)
def test_bad_num_threads(operands, direction, num_threads, error, message):
    with pytest.raises(error, match=re.escape(message)):
        operands.call(lk, direction, num_threads=num_threads)
    operands.assert_unchanged()


@pytest.mark.parametrize("num_threads, error, message", NUM_THREADS_ERRORS)
def test_set_num_threads_rejects_what_calls_reject(num_threads, error, message):
    lk.set_num_threads(3)
    with pytest.raises(error, match=re.escape(message)):
        lk.set_num_threads(num_threads)
    # The previous default stands, up to the CPUs (a serial build always reports one thread).
    assert lk.get_num_threads() == (min(3, THREAD_CAP) if lk.openmp_enabled() else 1)


LARGEST_C_INT_THREADS = """
import numpy as np
import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._testing import bits_equal, random_operand

x = random_operand(np.random.default_rng(0), 3 * (1 << 15) + 1, np.float64)
out = np.zeros_like(x)
if "{direction}" == "forward":
    result = lk.leaky_relu(x, num_threads=2**31 - 1, out=out)
    expected = reference.leaky_relu(x)
else:
    result = lk.leaky_relu_backward(x, x, num_threads=2**31 - 1, out=out)
    expected = reference.leaky_relu_backward(x, x)
assert result is out and bits_equal(out, expected)
print("ok")
"""


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_the_largest_c_int_thread_count_is_clamped_and_works(run_python, direction):
    # 2**31 - 1 passes validation (it fits OpenMP's C int); it used to start
    # that many threads, and libgomp ran out of memory and ended the process.
    # It is clamped to the usable CPUs instead (README). 2**31 is rejected by
    # validation (NUM_THREADS_ERRORS). In a child process: a regression kills it.
    process = run_python("-c", LARGEST_C_INT_THREADS.format(direction=direction))
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "ok"


UNSUPPORTED_DTYPES = [
    np.dtype(name)
    for name in (
        "complex64",
        "complex128",
        "object",
        "U1",
        "S1",
        "datetime64[s]",
        "timedelta64[s]",
        "longdouble",  # float128 on x86-64 Linux; char "g" even where it is 64 bits wide
    )
]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", UNSUPPORTED_DTYPES, ids=str)
def test_forward_rejects_unsupported_dtype(operands, impl, dtype):
    x = np.zeros((2, 3), dtype=dtype)
    message = f"x has unsupported dtype {dtype}; {SUPPORTED}"
    kwargs = {"out": operands.out} if impl is lk else {}
    with pytest.raises(TypeError, match=re.escape(message)):
        impl.leaky_relu(x, **kwargs)
    operands.assert_unchanged()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("bad", ["grad_output", "x"])
@pytest.mark.parametrize("dtype", UNSUPPORTED_DTYPES, ids=str)
def test_backward_rejects_unsupported_dtype(operands, impl, bad, dtype):
    arrays = {"grad_output": operands.grad_output, "x": operands.x}
    arrays[bad] = np.zeros((2, 3), dtype=dtype)
    message = f"{bad} has unsupported dtype {dtype}; {SUPPORTED}"
    kwargs = {"out": operands.out} if impl is lk else {}
    with pytest.raises(TypeError, match=re.escape(message)):
        impl.leaky_relu_backward(arrays["grad_output"], arrays["x"], **kwargs)
    operands.assert_unchanged()


RAGGED = [[1.0, 2.0], [3.0]]
SQUARE = [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda impl: impl.leaky_relu(RAGGED), "x"),
        (lambda impl: impl.leaky_relu_backward(RAGGED, SQUARE), "grad_output"),
        (lambda impl: impl.leaky_relu_backward(SQUARE, RAGGED), "x"),
    ],
    ids=["forward-x", "backward-grad_output", "backward-x"],
)
def test_ragged_list_is_rejected(impl, call, name):
    with pytest.raises(ValueError, match=re.escape(f"{name} cannot be converted to an array: ")):
        call(impl)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "grad_shape, x_shape", [((3, 2), (2, 3)), ((2, 3), (4,)), ((5,), (2, 3))],
    ids=["transposed", "trailing-axis", "longer"],
)
def test_backward_needs_shapes_that_broadcast(impl, grad_shape, x_shape):
    grad_output, x = np.ones(grad_shape), np.ones(x_shape)
    message = (
        f"grad_output and x must have shapes that broadcast together, got {grad_shape} "
        f"and {x_shape}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        impl.leaky_relu_backward(grad_output, x)
    assert bits_equal(grad_output, np.ones(grad_shape))
    assert bits_equal(x, np.ones(x_shape))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("slope", [-0.1, -1e-300])
def test_x_is_output_needs_a_nonnegative_slope(operands, impl, slope):
    message = (
        "x_is_output=True needs a slope >= 0 (the input's sign cannot be recovered "
        f"from the output otherwise), got {slope!r}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        operands.call(impl, "backward", negative_slope=slope, x_is_output=True)
    operands.assert_unchanged()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("x_is_output", [1, 0, None, "yes", np.array(True)], ids=repr)
def test_x_is_output_must_be_a_bool(operands, impl, x_is_output):
    message = f"x_is_output must be a bool, got {describe(x_is_output)}"
    with pytest.raises(TypeError, match=re.escape(message)):
        operands.call(impl, "backward", x_is_output=x_is_output)
    operands.assert_unchanged()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_x_is_output_accepts_a_numpy_bool(impl):
    x = np.array([-1.0, 2.0])
    result = impl.leaky_relu_backward(np.ones(2), x, 0.5, x_is_output=np.True_)
    assert bits_equal(result, np.array([0.5, 1.0]))


def _read_only_zeros(shape, dtype):
    a = np.zeros(shape, dtype)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(
    "make_out, error, message",
    [
        (lambda: [[0.0] * 3] * 2, TypeError, "out must be a numpy.ndarray, got list"),
        (lambda: 0.0, TypeError, "out must be a numpy.ndarray, got float"),
        # The result (float32) casts to another float dtype, as NumPy's would,
        # but not to an integer one under the default casting.
        (
            lambda: np.zeros((2, 3), np.int32),
            TypeError,
            "out of dtype int32 cannot take the result's dtype float32 under casting='same_kind'",
        ),
        (
            lambda: np.zeros((3, 2), np.float32),
            ValueError,
            "out must have shape (2, 3), got (3, 2)",
        ),
        # Broadcasting x into a larger out is not allowed either.
        (
            lambda: np.zeros((4, 2, 3), np.float32),
            ValueError,
            "out must have shape (2, 3), got (4, 2, 3)",
        ),
        (
            lambda: np.zeros((1, 3), np.float32),
            ValueError,
            "out must have shape (2, 3), got (1, 3)",
        ),
        (lambda: np.zeros(6, np.float32), ValueError, "out must have shape (2, 3), got (6,)"),
        (
            lambda: _read_only_zeros((2, 3), np.float32),
            ValueError,
            "out must be writeable, got a read-only array",
        ),
    ],
    ids=[
        "list",
        "float",
        "int32",
        "transposed-shape",
        "broadcast-target",
        "broadcastable",
        "flat",
        "read-only",
    ],
)
def test_bad_out(operands, direction, make_out, error, message):
    out = make_out()
    out_before = np.array(out, copy=True)
    with pytest.raises(error, match=re.escape(message)):
        operands.call(lk, direction, out=out)
    operands.assert_unchanged()
    assert bits_equal(out, out_before)


def test_in_place_on_a_read_only_array_is_rejected():
    x = _read_only_zeros(5, np.float64)
    with pytest.raises(ValueError, match="out must be writeable, got a read-only array"):
        lk.leaky_relu(x, out=x)
    with pytest.raises(ValueError, match="out must be writeable, got a read-only array"):
        lk.leaky_relu_backward(x, x, out=x)


def _hostile_frame():
    """A DataFrame wrong as any argument: strings, NaN and inf in its cells,
    a repr of many lines. No message may show a cell."""
    import pandas as pd

    rows = 40
    return pd.DataFrame({
        "label": [f"CELL{i}" for i in range(rows)],
        "value": np.linspace(-7.125, 7.125, rows),
        "bad": [np.inf, np.nan] * (rows // 2),
    })


def _calls_with(frame):
    """Every public entry point, with the frame as each argument in turn."""
    x = np.ones((40, 3))
    numbers = frame[["value", "bad"]]
    _, mask = lk.leaky_relu_forward_mask(x)
    return {
        "x": lambda: lk.leaky_relu(frame),
        "x (numeric, non-finite)": lambda: lk.leaky_relu(numbers, numbers),
        "negative_slope": lambda: lk.leaky_relu(x, frame),
        "alpha": lambda: lk.leaky_relu(x, alpha=frame),
        "out": lambda: lk.leaky_relu(x, out=frame),
        "where": lambda: lk.leaky_relu(x, where=frame),
        "num_threads": lambda: lk.leaky_relu(x, num_threads=frame),
        "grad_output": lambda: lk.leaky_relu_backward(frame, x),
        "x_is_output": lambda: lk.leaky_relu_backward(x, x, x_is_output=frame),
        "forward_mask x": lambda: lk.leaky_relu_forward_mask(frame),
        "mask": lambda: lk.leaky_relu_backward_mask(x, frame),
        "slope_grad grad_output": lambda: lk.leaky_relu_slope_grad(frame, x, (3,)),
        "slope_shape": lambda: lk.leaky_relu_slope_grad(x, x, frame),
        "LeakyReLU": lambda: lk.LeakyReLU(frame),
        "LeakyReLU inplace": lambda: lk.LeakyReLU(inplace=frame),
        "PReLU": lambda: lk.PReLU(frame),
        "set_num_threads": lambda: lk.set_num_threads(frame),
    }


def test_a_dataframe_wrong_in_several_ways_never_reaches_a_message():
    pytest.importorskip("pandas")
    frame = _hostile_frame()
    shown = re.compile(r"CELL|7\.125|inf\b|nan\b|\.\.\.", re.IGNORECASE)
    for argument, call in _calls_with(frame).items():
        with pytest.raises((TypeError, ValueError)) as error:
            call()
        message = str(error.value)
        assert len(message.splitlines()) <= 2, (argument, message)
        assert not shown.search(message), (argument, message)
