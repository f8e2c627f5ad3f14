"""leaky_kernel.dask: lazy Dask arrays that compute what the NumPy API computes.

Results are computed on a real multi-process cluster, where every task is
pickled to a worker, and on the threaded scheduler, and compared with the
oracle bit for bit. Argument errors must be the NumPy API's and come when the
graph is built, before anything is computed.
"""
import inspect
import re
from collections import Counter

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402  (after the skips: dask may be missing)

import leaky_kernel as lk  # noqa: E402
import leaky_kernel.dask as lk_dask  # noqa: E402
from leaky_kernel import _api, reference  # noqa: E402
from leaky_kernel._testing import bits_equal  # noqa: E402

FLOAT_DTYPES = ["float16", "float32", "float64"]
# Uneven: neither axis is a multiple of its chunk size.
SHAPE = (1001, 37)
CHUNKS = (300, 10)
OTHER_CHUNKS = (400, 16)


@pytest.fixture(scope="module")
def client():
    """A client of a two-process cluster, started once, only if a test needs it."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(params=["distributed", "threads"])
def compute(request):
    """compute(dask_array) -> ndarray, on the cluster or on the threaded scheduler."""
    if request.param == "threads":
        return lambda array: array.compute(scheduler="threads")
    client = request.getfixturevalue("client")
    return lambda array: client.compute(array).result()


def _fail_if_computed():
    raise AssertionError("a block was computed")


@pytest.fixture
def never_computed():
    """never_computed(dtype, shape=SHAPE): a Dask array that fails the test if computed."""

    def make(dtype, shape=SHAPE):
        meta = np.empty((0,) * len(shape), dtype)
        single_block = da.from_delayed(dask.delayed(_fail_if_computed)(), shape, meta=meta)
        return single_block.rechunk(CHUNKS)

    return make


def _dask_operand(make_operand, dtype, chunks):
    """Random data with special values, as a Dask array and as its ndarray."""
    values = make_operand(SHAPE, dtype)
    return da.from_array(values, chunks=chunks), values


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + ["int32"])
def test_forward_matches_oracle(compute, make_operand, dtype):
    x, x_values = _dask_operand(make_operand, dtype, CHUNKS)
    expected = reference.leaky_relu(x_values, 0.1)
    result = lk_dask.leaky_relu(x, 0.1)
    assert isinstance(result, da.Array)
    assert result.dtype == expected.dtype  # int32 gives float64
    assert result.chunks == x.chunks
    assert bits_equal(compute(result), expected)


@pytest.mark.parametrize(
    "grad_dtype, x_dtype",
    [(dtype, dtype) for dtype in FLOAT_DTYPES] + [("float16", "float32"), ("int32", "float16")],
)
def test_backward_matches_oracle_with_grad_output_and_x_chunked_differently(
    compute, make_operand, grad_dtype, x_dtype
):
    grad_output, grad_values = _dask_operand(make_operand, grad_dtype, CHUNKS)
    x, x_values = _dask_operand(make_operand, x_dtype, OTHER_CHUNKS)
    expected = reference.leaky_relu_backward(grad_values, x_values, 0.1)
    result = lk_dask.leaky_relu_backward(grad_output, x, 0.1)
    assert result.dtype == expected.dtype
    # Aligned as for any of Dask's elementwise operations.
    assert result.chunks == (grad_output + x).chunks
    assert bits_equal(compute(result), expected)


def test_backward_from_output_matches_oracle(compute, make_operand):
    grad_output, grad_values = _dask_operand(make_operand, "float32", CHUNKS)
    x, x_values = _dask_operand(make_operand, "float32", OTHER_CHUNKS)
    output = lk_dask.leaky_relu(x, alpha=0.25)
    result = lk_dask.leaky_relu_backward(grad_output, output, alpha=0.25, x_is_output=True)
    assert bits_equal(compute(result), reference.leaky_relu_backward(grad_values, x_values, alpha=0.25))


def test_numpy_arrays_and_lists_are_wrapped_in_dask_arrays(compute):
    x = np.array([[-2.0, 0.0], [1.5, -3.0]], np.float32)
    forward = lk_dask.leaky_relu(x.tolist())
    backward = lk_dask.leaky_relu_backward(np.ones_like(x), x)
    assert isinstance(forward, da.Array) and isinstance(backward, da.Array)
    assert bits_equal(compute(forward), reference.leaky_relu(x.tolist()))
    assert bits_equal(compute(backward), reference.leaky_relu_backward(np.ones_like(x), x))


def test_blocks_run_the_kernel_with_several_threads_on_worker_processes(client, make_operand):
    # Blocks of 2^16 elements: large enough for the kernel to go parallel.
    values = make_operand((512, 256), "float32")
    x = da.from_array(values, chunks=(256, 256))
    result = lk_dask.leaky_relu_backward(x, x, num_threads=2)
    expected = reference.leaky_relu_backward(values, values)
    assert bits_equal(client.compute(result).result(), expected)


def test_building_the_graph_computes_nothing(never_computed):
    grad_output = never_computed("float16")
    x = never_computed("int32").rechunk(OTHER_CHUNKS)
    forward = lk_dask.leaky_relu(x)
    backward = lk_dask.leaky_relu_backward(grad_output, x)
    assert (forward.dtype, forward.chunks) == (np.float64, x.chunks)
    assert (backward.dtype, backward.chunks) == (np.float64, (grad_output + x).chunks)
    for result in (forward, backward):
        assert type(result._meta) is np.ndarray and result._meta.dtype == result.dtype


@pytest.mark.parametrize(
    "threads_argument, num_threads",
    [({}, 1), ({"num_threads": None}, None), ({"num_threads": 2}, 2)],
    ids=["default", "None", "2"],
)
def test_every_block_calls_the_numpy_api_with_num_threads(
    monkeypatch, make_operand, threads_argument, num_threads
):
    # Recording the calls is possible in this process only: threaded scheduler.
    calls = []

    def recording(function):
        def record(*args, **kwargs):
            calls.append((function.__name__, kwargs["num_threads"]))
            return function(*args, **kwargs)

        return record

    monkeypatch.setattr(_api, "leaky_relu", recording(_api.leaky_relu))
    monkeypatch.setattr(_api, "leaky_relu_backward", recording(_api.leaky_relu_backward))
    x, x_values = _dask_operand(make_operand, "float32", CHUNKS)
    forward = lk_dask.leaky_relu(x, **threads_argument)
    backward = lk_dask.leaky_relu_backward(x, x, **threads_argument)
    forward_values, backward_values = dask.compute(forward, backward, scheduler="threads")
    blocks = x.npartitions
    assert Counter(calls) == {
        ("leaky_relu", num_threads): blocks,
        ("leaky_relu_backward", num_threads): blocks,
    }
    assert bits_equal(forward_values, reference.leaky_relu(x_values))
    assert bits_equal(backward_values, reference.leaky_relu_backward(x_values, x_values))


# Each case: a call of `api` (leaky_kernel or leaky_kernel.dask) taking
# make(dtype, shape=SHAPE) for its operands, the error, and the start of its message.
BAD_CALLS = {
    "complex x": (
        lambda api, make: api.leaky_relu(make("complex128")),
        TypeError,
        "x has unsupported dtype complex128; supported: float16, float32, float64",
    ),
    "complex grad_output": (
        lambda api, make: api.leaky_relu_backward(make("complex64"), make("float32")),
        TypeError,
        "grad_output has unsupported dtype complex64",
    ),
    "shapes differ": (
        lambda api, make: api.leaky_relu_backward(make("float32", (1001, 36)), make("float32")),
        ValueError,
        "grad_output and x must have shapes that broadcast together, got (1001, 36) and (1001, 37)",
    ),
    "NaN slope": (
        lambda api, make: api.leaky_relu(make("float32"), float("nan")),
        ValueError,
        "negative_slope must be finite",
    ),
    "string slope": (
        lambda api, make: api.leaky_relu_backward(make("float32"), make("float32"), "0.1"),
        TypeError,
        "negative_slope must be a real number",
    ),
    "slope and alpha": (
        lambda api, make: api.leaky_relu(make("float32"), 0.1, alpha=0.2),
        TypeError,
        "give negative_slope or its alias alpha, not both",
    ),
    "x_is_output, negative slope": (
        lambda api, make: api.leaky_relu_backward(make("float32"), make("float32"), -0.5, x_is_output=True),
        ValueError,
        "x_is_output=True needs a slope >= 0",
    ),
    "x_is_output not a bool": (
        lambda api, make: api.leaky_relu_backward(make("float32"), make("float32"), x_is_output="yes"),
        TypeError,
        "x_is_output must be a bool",
    ),
    "zero threads": (
        lambda api, make: api.leaky_relu(make("float32"), num_threads=0),
        ValueError,
        "num_threads must be a positive int or None",
    ),
    "fractional threads": (
        lambda api, make: api.leaky_relu(make("float32"), num_threads=1.5),
        TypeError,
        "num_threads must be a positive int or None",
    ),
}


@pytest.mark.parametrize("call, error, message", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_arguments_raise_the_numpy_apis_error_when_the_graph_is_built(
    never_computed, call, error, message
):
    with pytest.raises(error, match=re.escape(message)) as numpy_error:
        call(lk, lambda dtype, shape=SHAPE: np.zeros(shape, dtype))
    # Computing any block would raise AssertionError instead.
    with pytest.raises(error) as dask_error:
        call(lk_dask, never_computed)
    assert str(dask_error.value) == str(numpy_error.value)


@pytest.mark.parametrize("name", ["leaky_relu", "leaky_relu_backward"])
def test_signature_is_the_numpy_apis_without_ufunc_keywords_and_one_thread_by_default(name):
    numpy_parameters = inspect.signature(getattr(lk, name)).parameters.values()
    dask_parameters = list(inspect.signature(getattr(lk_dask, name)).parameters.values())
    assert dask_parameters[:-1] == [
        p for p in numpy_parameters
        if p.name not in ("out", "where", "dtype", "casting", "order", "subok", "num_threads")
    ]
    assert (dask_parameters[-1].name, dask_parameters[-1].default) == ("num_threads", 1)


def test_import_without_dask_says_how_to_install_it(run_python):
    source = (
        "import sys\n"
        "sys.modules['dask'] = None  # makes any import of dask fail\n"
        "try:\n"
        "    import leaky_kernel.dask\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = run_python("-c", source)
    assert result.returncode == 0, result.stderr
    assert 'pip install "leaky_kernel[dask]"' in result.stdout
