"""leaky_relu and leaky_relu_backward as ufuncs: containers, slope arrays,
where= and broadcasting, bit for bit against NumPy expressions."""
import pickle

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal, random_operand

FLOATS = [np.float32, np.float64]
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE


def forward_expected(x, slope):
    """np.where(x > 0, x, slope.astype(dtype) * x), in the compute dtype."""
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, np.asarray(slope).astype(x.dtype) * x)


def backward_expected(g, x, slope):
    g, x = np.asarray(g), np.asarray(x)
    with np.errstate(all="ignore"):
        return np.where(x > 0, g, np.asarray(slope).astype(g.dtype) * g)


@pytest.fixture
def operands(rng):
    def make(shape, dtype):
        return random_operand(rng, shape, dtype), random_operand(rng, shape, dtype)

    return make


# ------------------------------------------------------------- slope arrays


SLOPE_CASES = {
    # name: (x's shape, slope's shape)
    "per-channel": ((6, 1001), (6, 1)),
    "per-feature": ((301, 7), (7,)),
    "per-channel-nchw": ((3, 4, 5, 6), (4, 1, 1)),
    "full": ((13, 17), (13, 17)),
    "per-channel-parallel": ((3, 3 * PARALLEL_MIN_SIZE + 5), (3, 1)),
    "per-feature-parallel": ((PARALLEL_MIN_SIZE // 8 + 3, 16), (16,)),
    "full-parallel": ((3, PARALLEL_MIN_SIZE + 5), (3, PARALLEL_MIN_SIZE + 5)),
}


def slopes_of(rng, shape):
    """Slopes of both signs, above 1 and 0 among them."""
    slopes = rng.choice([0.01, 0.25, -0.5, 0.0, 3.0, 1e-30], size=shape)
    return slopes


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", list(SLOPE_CASES))
@pytest.mark.parametrize("n_threads", [1, 2])
def test_slope_arrays(rng, operands, dtype, case, n_threads):
    x_shape, slope_shape = SLOPE_CASES[case]
    x, g = operands(x_shape, dtype)
    slope = slopes_of(rng, slope_shape)
    assert bits_equal(lk.leaky_relu(x, slope, num_threads=n_threads), forward_expected(x, slope))
    assert bits_equal(
        lk.leaky_relu_backward(g, x, slope, num_threads=n_threads), backward_expected(g, x, slope)
    )
    assert bits_equal(lk.leaky_relu(x, alpha=slope), reference.leaky_relu(x, alpha=slope))
    y, mask = lk.leaky_relu_forward_mask(x, slope, num_threads=n_threads)
    assert bits_equal(y, forward_expected(x, slope))
    assert bits_equal(mask, np.packbits((x > 0).reshape(-1), bitorder="little"))
    grad = lk.leaky_relu_backward_mask(g, mask, slope, num_threads=n_threads)
    assert bits_equal(grad, backward_expected(g, x, slope))


@pytest.mark.parametrize("dtype", FLOATS)
def test_slope_arrays_on_strided_and_reversed_operands(rng, operands, dtype):
    x, g = operands((8, 2 * PARALLEL_MIN_SIZE), dtype)
    slope = slopes_of(rng, (4, 1))
    full = slopes_of(rng, x.shape)
    for view in (lambda a: a[::2, ::2], lambda a: a[::-2, ::-3], lambda a: a[1::2].T.T):
        xv, gv = view(x), view(g)
        assert bits_equal(lk.leaky_relu(xv, view(full), num_threads=2),
                          forward_expected(xv, view(full)))
        assert bits_equal(lk.leaky_relu(xv, slope, num_threads=2), forward_expected(xv, slope))
        assert bits_equal(
            lk.leaky_relu_backward(gv, xv, slope, num_threads=2), backward_expected(gv, xv, slope)
        )


@pytest.mark.parametrize("dtype", FLOATS)
def test_slope_array_with_out_in_place_and_overlapping(rng, operands, dtype):
    x, _ = operands((50, 40), dtype)
    slope = slopes_of(rng, (40,))
    expected = forward_expected(x, slope)
    same = x.copy()
    assert lk.leaky_relu(same, slope, out=same) is same
    assert bits_equal(same, expected)
    buffer = np.concatenate([x.reshape(-1), np.zeros(40, dtype)])
    shifted_out = buffer[40:].reshape(50, 40)  # overlaps x's memory, one row later
    lk.leaky_relu(buffer[:-40].reshape(50, 40), slope, out=shifted_out)
    assert bits_equal(shifted_out, expected)


def test_a_stride_0_slope_is_one_slope(operands):
    x, g = operands((40, 30), np.float32)
    broadcast = np.broadcast_to(np.float64(-0.75), (40, 30))
    assert bits_equal(lk.leaky_relu(x, broadcast), lk.leaky_relu(x, -0.75))
    assert bits_equal(lk.leaky_relu_backward(g, x, broadcast), lk.leaky_relu_backward(g, x, -0.75))
    assert bits_equal(lk.leaky_relu(x, np.array([0.3])), lk.leaky_relu(x, 0.3))


def test_float16_with_a_slope_array_computes_in_float32(operands):
    x, _ = operands((30, 5), np.float16)
    slope = np.array([0.1, 0.2, 1e-6, -3.0, 0.01])
    x32 = x.astype(np.float32)
    expected = np.where(x32 > 0, x32, slope.astype(np.float32) * x32).astype(np.float16)
    result = lk.leaky_relu(x, slope)
    assert result.dtype == np.float16
    assert bits_equal(result, expected)


@pytest.mark.parametrize("dtype", [np.int16, np.bool_, np.uint8])
def test_integer_inputs_with_a_slope_array_give_float64(dtype):
    x = np.arange(-6, 6).reshape(3, 4).astype(dtype)
    slope = np.array([0.5, 0.25, 2.0, -1.0], np.float32)
    result = lk.leaky_relu(x, slope)
    assert result.dtype == np.float64
    assert bits_equal(result, forward_expected(x.astype(np.float64), slope))


def test_x_is_output_needs_every_slope_nonnegative(operands):
    x, g = operands((4, 3), np.float32)
    with pytest.raises(ValueError, match="x_is_output=True needs every slope >= 0"):
        lk.leaky_relu_backward(g, x, np.array([0.1, -0.1, 0.2]), x_is_output=True)
    y = lk.leaky_relu(x, np.array([0.1, 0.0, 0.2]))
    assert bits_equal(
        lk.leaky_relu_backward(g, y, np.array([0.1, 0.0, 0.2]), x_is_output=True),
        backward_expected(g, x, np.array([0.1, 0.0, 0.2])),
    )


def test_layer_with_a_slope_array(rng, operands):
    x, g = operands((64, 9), np.float32)
    slope = slopes_of(rng, (9,))
    layer = lk.LeakyReLU(negative_slope=slope)
    slope[:] = 99.0  # the layer keeps its own copy
    assert bits_equal(layer(x), forward_expected(x, layer.negative_slope))
    assert bits_equal(layer.backward(g), backward_expected(g, x, layer.negative_slope))
    assert "ndarray of shape (9,)" in repr(layer)
    in_place = lk.LeakyReLU(negative_slope=layer.negative_slope, inplace=True)
    x_copy = x.copy()
    assert in_place(x_copy) is x_copy
    assert bits_equal(x_copy, forward_expected(x, layer.negative_slope))
    assert bits_equal(in_place.backward(g), backward_expected(g, x, layer.negative_slope))


# --------------------------------------------------------------- broadcasting


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "grad_shape, x_shape", [((7,), (300, 7)), ((300, 7), (1, 7)), ((), (5, 3)), ((4, 1), (1, 6))]
)
def test_backward_broadcasts_grad_output_and_x(rng, dtype, grad_shape, x_shape):
    g = random_operand(rng, (1, *grad_shape), dtype).reshape(grad_shape)
    x = random_operand(rng, x_shape, dtype)
    result = lk.leaky_relu_backward(g, x, -0.5)
    expected = backward_expected(g, x, -0.5)
    assert bits_equal(result, expected)
    assert bits_equal(reference.leaky_relu_backward(g, x, -0.5), expected)


def test_slope_that_does_not_broadcast_is_a_short_value_error():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError) as info:
        lk.leaky_relu(x, np.full((4, 2), 0.1))
    assert str(info.value) == (
        "negative_slope of shape (4, 2) does not broadcast to the result's shape (4, 3)"
    )


# ------------------------------------------------------------------- where=


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("size", [1000, 3 * PARALLEL_MIN_SIZE + 5])
def test_where_with_out(rng, operands, dtype, size):
    x, g = operands(size, dtype)
    where = rng.random(size) < 0.5
    out = np.full(size, 7.5, dtype)
    assert lk.leaky_relu(x, 0.2, out=out, where=where) is out
    assert bits_equal(out, np.where(where, forward_expected(x, 0.2), dtype(7.5)))
    out[:] = 7.5
    lk.leaky_relu_backward(g, x, -0.3, out=out, where=where, num_threads=2)
    assert bits_equal(out, np.where(where, backward_expected(g, x, -0.3), dtype(7.5)))


def test_where_broadcasts_and_combines_with_a_slope_array(operands):
    x, _ = operands((6, 5), np.float32)
    where = np.array([True, False, True, True, False])
    slope = np.linspace(-1, 1, 6).reshape(6, 1)
    out = np.zeros_like(x)
    lk.leaky_relu(x, slope, out=out, where=where)
    assert bits_equal(out, np.where(where, forward_expected(x, slope), np.float32(0)))


@pytest.mark.parametrize(
    "where, error, message",
    [
        (np.ones(3, np.float32), TypeError, "where must be True or an array of bools"),
        (np.array(["yes", "no", "no"]), TypeError, "where must be True or an array of bools"),
        (np.ones(4, bool), ValueError, "where of shape (4,) does not broadcast"),
    ],
)
def test_bad_where_changes_nothing(where, error, message):
    x = np.array([-1.0, 2.0, -3.0])
    out = np.full(3, 5.0)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        lk.leaky_relu(x, out=out, where=where)
    assert bits_equal(out, np.full(3, 5.0))


# ----------------------------------------------------------------- containers


@pytest.mark.parametrize("dtype", FLOATS)
def test_pandas_series_and_dataframe(operands, dtype):
    pd = pytest.importorskip("pandas")
    x, g = operands((40, 3), dtype)
    index = pd.Index([f"r{i}" for i in range(40)], name="row")
    frame = pd.DataFrame(x, index=index, columns=["a", "b", "c"])
    grad = pd.DataFrame(g, index=index, columns=["a", "b", "c"])
    y = lk.leaky_relu(frame, 0.1)
    assert isinstance(y, pd.DataFrame)
    assert y.index.equals(frame.index) and list(y.columns) == ["a", "b", "c"]
    assert bits_equal(y.to_numpy(), forward_expected(x, 0.1))
    dx = lk.leaky_relu_backward(grad, frame, 0.1)
    assert isinstance(dx, pd.DataFrame) and dx.index.equals(frame.index)
    assert bits_equal(dx.to_numpy(), backward_expected(g, x, 0.1))
    per_column = np.array([0.1, -2.0, 0.5])
    assert bits_equal(lk.leaky_relu(frame, per_column).to_numpy(), forward_expected(x, per_column))

    series = frame["b"].rename("activation")
    s = lk.leaky_relu(series, -0.25)
    assert isinstance(s, pd.Series) and s.name == "activation" and s.index.equals(index)
    assert s.dtype == dtype
    assert bits_equal(s.to_numpy(), forward_expected(x[:, 1], -0.25))


@pytest.mark.parametrize("dtype", FLOATS)
def test_xarray_dataarray(operands, dtype):
    xr = pytest.importorskip("xarray")
    x, g = operands((4, 25), dtype)
    coords = {"channel": ["r", "g", "b", "a"], "t": np.arange(25)}
    array = xr.DataArray(x, dims=("channel", "t"), coords=coords, attrs={"units": "V"})
    grad = xr.DataArray(g, dims=("channel", "t"), coords=coords)
    y = lk.leaky_relu(array, 0.2)
    assert isinstance(y, xr.DataArray) and y.dims == ("channel", "t")
    assert list(y.coords["channel"].values) == ["r", "g", "b", "a"]
    assert bits_equal(y.values, forward_expected(x, 0.2))
    dx = lk.leaky_relu_backward(grad, array, 0.2)
    assert isinstance(dx, xr.DataArray) and dx.dims == ("channel", "t")
    assert bits_equal(dx.values, backward_expected(g, x, 0.2))
    per_channel = np.array([[0.1], [0.2], [-1.0], [0.0]])
    assert bits_equal(lk.leaky_relu(array, per_channel).values, forward_expected(x, per_channel))


class CountingScheduler:
    """A Dask scheduler that counts its computes."""

    def __init__(self):
        self.computes = 0

    def __call__(self, graph, keys, **kwargs):
        import dask

        self.computes += 1
        return dask.get(graph, keys, **kwargs)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dask_stays_lazy_until_compute(operands, dtype):
    da = pytest.importorskip("dask.array")
    import dask

    x, g = operands((300, 40), dtype)
    scheduler = CountingScheduler()
    with dask.config.set(scheduler=scheduler):
        lazy_x = da.from_array(x, chunks=(100, 20))
        lazy_g = da.from_array(g, chunks=(50, 40))
        slope = np.linspace(-0.5, 0.5, 40)
        y = lk.leaky_relu(lazy_x, slope)
        dx = lk.leaky_relu_backward(lazy_g, lazy_x, 0.3)
        assert isinstance(y, da.Array) and isinstance(dx, da.Array)
        assert y.dtype == dtype and dx.dtype == dtype
        assert scheduler.computes == 0
        assert bits_equal(y.compute(), forward_expected(x, slope))
        assert bits_equal(dx.compute(), backward_expected(g, x, 0.3))
        assert scheduler.computes == 2


@pytest.mark.parametrize("dtype", FLOATS)
def test_masked_arrays_keep_their_masks(rng, operands, dtype):
    x, g = operands((20, 30), dtype)
    x_mask = rng.random(x.shape) < 0.2
    g_mask = rng.random(x.shape) < 0.2
    masked_x = np.ma.masked_array(x, mask=x_mask)
    masked_g = np.ma.masked_array(g, mask=g_mask)
    y = lk.leaky_relu(masked_x, 0.1)
    assert isinstance(y, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(y), x_mask)
    assert bits_equal(y.data[~x_mask], forward_expected(x, 0.1)[~x_mask])
    dx = lk.leaky_relu_backward(masked_g, masked_x, 0.1)
    union = x_mask | g_mask
    assert isinstance(dx, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(dx), union)
    assert bits_equal(dx.data[~union], backward_expected(g, x, 0.1)[~union])
    with np.errstate(over="ignore"):
        x_half = x.astype(np.float16)
    half = lk.leaky_relu(np.ma.masked_array(x_half, mask=x_mask), 0.1)
    assert half.dtype == np.float16 and np.array_equal(np.ma.getmaskarray(half), x_mask)


def test_ndarray_subclasses_keep_their_type():
    x = np.array([[-1.0, 2.0], [3.0, -4.0]]).view(np.recarray)
    result = lk.leaky_relu(x, 0.5)
    assert type(result) is np.recarray
    assert bits_equal(np.asarray(result), np.array([[-0.5, 2.0], [3.0, -2.0]]))


# ------------------------------------------------------ the slope's gradient


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, slope_shape",
    [((64, 7), (7,)), ((5, 3, 8, 8), (3, 1, 1)), ((10, 4), ()), ((6, 9), (6, 9))],
)
def test_slope_grad_against_a_float64_reference(rng, dtype, x_shape, slope_shape):
    x = (rng.standard_normal(x_shape) * 3).astype(dtype)
    g = rng.standard_normal(x_shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    terms = np.where(x64 > 0, 0.0, g64 * x64)
    lead = len(x_shape) - len(slope_shape)
    reduced = terms.sum(axis=tuple(range(lead))) if lead else terms
    for i, n in enumerate(slope_shape):
        if n == 1:
            reduced = reduced.sum(axis=i, keepdims=True)
    got = lk.leaky_relu_slope_grad(g, x, slope_shape)
    assert got.shape == slope_shape and got.dtype == dtype
    # The float64 sums differ only by summation order: far below the result's rounding.
    bound = terms.size * 2.0**-53 * np.abs(terms).sum()
    assert np.all(np.abs(got.astype(np.float64) - reduced) <= bound + np.abs(reduced) * np.finfo(dtype).eps)


def test_slope_grad_counts_nan_and_zero_inputs_as_the_slope_branch():
    x = np.array([np.nan, 0.0, -0.0, 2.0, -1.0])
    g = np.array([1.0, 5.0, 7.0, 11.0, 3.0])
    got = lk.leaky_relu_slope_grad(g, x, ())
    assert np.isnan(got)
    got = lk.leaky_relu_slope_grad(g[1:], x[1:], (1,))
    assert bits_equal(got, np.array([0.0 + -0.0 + -3.0]))


@pytest.mark.parametrize(
    "slope_shape, error, message",
    [
        ((3,), ValueError, "slope_shape (3,) does not broadcast"),
        ((2, 1, 4), ValueError, "slope_shape (2, 1, 4) does not broadcast"),
        ("4", TypeError, "slope_shape must be a tuple of non-negative ints"),
        ((1.5,), TypeError, "slope_shape must be a tuple of non-negative ints"),
    ],
)
def test_slope_grad_refuses_bad_shapes(slope_shape, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        lk.leaky_relu_slope_grad(np.ones((2, 4)), np.ones((2, 4)), slope_shape)


def test_prelu_layer_gradients(rng):
    x = rng.standard_normal((32, 6)).astype(np.float32)
    g = rng.standard_normal((32, 6)).astype(np.float32)
    layer = lk.PReLU(np.full(6, 0.25))
    y = layer(x)
    assert bits_equal(y, forward_expected(x, layer.slope))
    dx, dslope = layer.backward(g)
    assert bits_equal(dx, backward_expected(g, x, layer.slope))
    assert bits_equal(dslope, lk.leaky_relu_slope_grad(g, x, (6,)))
    # A finite-difference check of the slope gradient of sum(g * y).
    step = 1e-3
    for j in range(6):
        bumped = layer.slope.copy()
        bumped[j] += step
        up = np.sum(g.astype(np.float64) * lk.leaky_relu(x.astype(np.float64), bumped))
        bumped[j] -= 2 * step
        down = np.sum(g.astype(np.float64) * lk.leaky_relu(x.astype(np.float64), bumped))
        assert abs((up - down) / (2 * step) - dslope[j]) <= 1e-4 * (1 + abs(dslope[j]))


def test_prelu_refuses_backward_before_forward_and_other_shapes():
    layer = lk.PReLU(0.25)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones(3))
    layer(np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad_output must have the shape"):
        layer.backward(np.ones(3))


def test_dask_module_refuses_a_slope_array_with_a_pointer():
    pytest.importorskip("dask.array")
    import leaky_kernel.dask as lk_dask

    with pytest.raises(TypeError, match="leaky_kernel.dask takes one slope"):
        lk_dask.leaky_relu(np.ones((4, 3)), np.ones(3))


def test_dask_module_needs_one_shape():
    da = pytest.importorskip("dask.array")
    import leaky_kernel.dask as lk_dask

    with pytest.raises(ValueError, match="leaky_kernel.dask needs grad_output and x of one shape"):
        lk_dask.leaky_relu_backward(da.ones((4, 3)), da.ones(3))


def test_lazy_results_travel_to_another_process(run_python, tmp_path):
    """Dask ships a graph's ufuncs to its workers by pickling them: by name,
    which a fresh process turns back into the same computation."""
    da = pytest.importorskip("dask.array")
    x = np.linspace(-1, 1, 60, dtype=np.float32).reshape(6, 10)
    slope = np.linspace(0.0, 1.0, 10)
    lazy = lk.leaky_relu_backward(da.from_array(x, chunks=3), da.from_array(x, chunks=2), slope,
                                  num_threads=2)
    (tmp_path / "graph.pickle").write_bytes(pickle.dumps(lazy))
    np.save(tmp_path / "expected.npy", backward_expected(x, x, slope))
    code = (
        "import pickle, sys, numpy as np\n"
        "from leaky_kernel._testing import bits_equal\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    result = pickle.load(f).compute(scheduler='sync')\n"
        "sys.exit(0 if bits_equal(result, np.load(sys.argv[2])) else 1)\n"
    )
    process = run_python(
        "-c", code, str(tmp_path / "graph.pickle"), str(tmp_path / "expected.npy")
    )
    assert process.returncode == 0, process.stderr


# ------------------------------------------------- the ufuncs as NumPy sees them


class UfuncRecorder:
    """An operand that hands every ufunc it meets to the test instead of computing."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.seen = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self.seen.append(ufunc)
        return self


def the_ufuncs(num_threads=None):
    """(forward, backward): the ufuncs the public functions call, as a
    container's __array_ufunc__ receives them."""
    recorder = UfuncRecorder((4,), np.float64)
    lk.leaky_relu(recorder, 0.5, num_threads=num_threads)
    lk.leaky_relu_backward(recorder, recorder, 0.5, num_threads=num_threads)
    return tuple(recorder.seen)


def test_accumulate_runs_the_recurrence_in_order_on_two_threads(rng):
    forward, backward = the_ufuncs(num_threads=2)
    lk.set_num_threads(2)
    # forward.accumulate(x)[i] = leaky_relu(result[i - 1], slope=x[i]): a
    # recurrence, here a running product of slopes near 1 that stays negative.
    x = rng.uniform(0.999, 1.001, 100_000)
    x[0] = -1.0
    expected = np.empty_like(x)
    expected[0] = x[0]
    for i in range(1, x.size):
        previous = expected[i - 1]
        expected[i] = previous if previous > 0 else x[i] * previous
    assert expected[-1] < 0
    for _ in range(5):  # a race shows up in some runs only
        assert bits_equal(forward.accumulate(x), expected)


def test_one_ufunc_per_operation_whatever_the_setting():
    from leaky_kernel import _ufunc

    seen = {the_ufuncs(n) for n in (None, 1, 2)}
    assert seen == {(_ufunc.leaky_relu, _ufunc.leaky_relu_backward)}
    for ufunc, name in [(_ufunc.leaky_relu, "leaky_relu"),
                        (_ufunc.leaky_relu_backward, "leaky_relu_backward")]:
        assert ufunc.__name__ == name
        assert f"leaky_kernel._ufunc\n{name}".encode() in pickle.dumps(ufunc, protocol=0)
        assert pickle.loads(pickle.dumps(ufunc)) is ufunc


class RaisingContainer(UfuncRecorder):
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise RuntimeError("refused by the container")


def test_a_ufunc_call_that_raises_leaves_no_thread_setting_behind():
    with pytest.raises(RuntimeError, match="refused by the container"):
        lk.leaky_relu(RaisingContainer((3,), np.float32), 0.5, num_threads=2)
    # Nothing set: the next loop that runs outside the public functions reads
    # the configured state.
    previous = kernels.set_ufunc_call(1, False)
    kernels.restore_ufunc_call(previous)
    assert previous == 0
