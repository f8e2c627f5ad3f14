"""Containers whose meaning is kept or refused, never dropped: labelled
slopes aligned as pandas and xarray align them, masked slopes, xarray
Datasets, empty and nullable pandas objects, tensors that require grad."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import leaky_kernel as lk
from leaky_kernel._testing import bits_equal

FUNCTIONS = {
    "forward": lambda x, slope: lk.leaky_relu(x, slope),
    "backward": lambda x, slope: lk.leaky_relu_backward(x * 0 + 3.0, x, slope),
}


def expected(direction, x, slope):
    """What the call should give, from pandas' or xarray's own arithmetic
    (which aligns by label), in x's container."""
    if direction == "forward":
        return (x * slope).where(x <= 0, x)
    return (x * 0 + 3.0 * slope).where(x <= 0, 3.0)


# ------------------------------------------------------------ labelled slopes


@pytest.mark.parametrize("direction", FUNCTIONS)
def test_a_series_slope_on_a_dataframe_aligns_with_its_columns(direction):
    frame = pd.DataFrame({"u": [-1.0, -2.0, 4.0], "v": [-4.0, -8.0, 5.0]})
    slope = pd.Series({"v": 0.5, "u": 0.25})  # the columns in the other order
    got = FUNCTIONS[direction](frame, slope)
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, expected(direction, frame, slope))
    assert got["u"].iloc[0] == (-0.25 if direction == "forward" else 0.75)


@pytest.mark.parametrize("direction", FUNCTIONS)
def test_a_series_slope_on_a_series_aligns_with_its_index(direction):
    x = pd.Series([-1.0, -2.0, 3.0], index=["a", "b", "c"])
    slope = pd.Series([0.1, 0.2, 0.3], index=["c", "b", "a"])
    got = FUNCTIONS[direction](x, slope)
    pd.testing.assert_series_equal(got, expected(direction, x, slope))


def test_a_dataframe_slope_aligns_with_both_axes():
    frame = pd.DataFrame({"u": [-1.0, -2.0], "v": [-4.0, -8.0]}, index=["p", "q"])
    slope = pd.DataFrame({"v": [0.5, 0.75], "u": [0.25, 0.125]}, index=["q", "p"])
    pd.testing.assert_frame_equal(lk.leaky_relu(frame, slope), frame * slope)


@pytest.mark.parametrize(
    "slope",
    [
        pd.Series({"u": 0.5}),  # v has no slope: pandas would make it NaN
        pd.Series({"u": 0.5, "v": 0.25, "w": 2.0}),  # w matches no column
        pd.Series([0.5, 0.25], index=["u", "u"]),  # u twice
    ],
    ids=["missing", "extra", "duplicate"],
)
def test_a_series_slope_whose_labels_differ_is_refused(slope):
    frame = pd.DataFrame({"u": [-1.0], "v": [-4.0]})
    with pytest.raises(ValueError, match=r"^negative_slope's labels must match x's columns"):
        lk.leaky_relu(frame, slope)


def test_a_labelled_slope_on_an_unlabelled_x_is_refused():
    with pytest.raises(TypeError, match=r"^negative_slope is a labelled Series but x has no"):
        lk.leaky_relu(np.array([[-1.0, -2.0]]), pd.Series({"v": 0.5, "u": 0.25}))
    with pytest.raises(TypeError, match=r"^alpha is a labelled DataArray but x has no xarray"):
        lk.leaky_relu(pd.Series([-1.0]), alpha=xr.DataArray([0.5], dims=("c",)))


@pytest.mark.parametrize("direction", FUNCTIONS)
def test_a_dataarray_slope_aligns_on_dimension_names(direction):
    # Square, so that applying the slope by position would broadcast along t.
    x = xr.DataArray(-np.arange(1.0, 5.0).reshape(2, 2), dims=("c", "t"))
    slope = xr.DataArray([0.5, 0.25], dims=("c",))
    got = FUNCTIONS[direction](x, slope)
    assert got.dims == ("c", "t")
    xr.testing.assert_identical(got, expected(direction, x, slope).transpose("c", "t"))
    assert got.values[1, 0] == (-0.75 if direction == "forward" else 0.75)


def test_a_dataarray_slope_aligns_on_coordinates_in_any_order_and_transposes():
    x = xr.DataArray(
        -np.arange(1.0, 7.0).reshape(2, 3), dims=("c", "t"), coords={"c": ["r", "g"]}
    )
    slope = xr.DataArray(
        [[0.5, 0.25], [1.0, 2.0], [3.0, 4.0]], dims=("t", "c"), coords={"c": ["g", "r"]}
    )
    xr.testing.assert_identical(lk.leaky_relu(x, slope), (x * slope).transpose("c", "t"))


@pytest.mark.parametrize(
    "slope, message",
    [
        (xr.DataArray([0.5, 0.25], dims=("h",)), "has dimensions that x lacks"),
        (xr.DataArray([0.5, 0.25, 1.0], dims=("c",)), "coordinates or sizes differ"),
        (xr.DataArray([0.5, 0.25], dims=("c",), coords={"c": ["r", "b"]}),
         "coordinates or sizes differ"),
    ],
    ids=["new dimension", "other size", "other coordinates"],
)
def test_a_dataarray_slope_that_does_not_align_exactly_is_refused(slope, message):
    x = xr.DataArray(-np.ones((2, 2)), dims=("c", "t"), coords={"c": ["r", "g"]})
    with pytest.raises(ValueError, match=rf"^negative_slope.{{0,3}} {message}"):
        lk.leaky_relu(x, slope)


# ------------------------------------------------------------- masked slopes


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_masked_slope_keeps_its_mask_in_union_with_x(rng, dtype):
    x = (rng.standard_normal((40, 30)) - 0.5).astype(dtype)
    x_mask = rng.random(x.shape) < 0.2
    slope_mask = rng.random(x.shape[1]) < 0.3
    slope = np.ma.masked_array(rng.random(x.shape[1]), mask=slope_mask)
    slope.data[slope_mask] = np.nan  # hidden: must not reach a visible result
    for operand, mask in ((x, np.zeros_like(x_mask)), (np.ma.masked_array(x, x_mask), x_mask)):
        union = mask | slope_mask
        want = np.multiply(operand, slope)  # NumPy's mask rule for masked operands
        assert np.array_equal(np.ma.getmaskarray(want), union)
        for got, plain in (
            (lk.leaky_relu(operand, slope), lk.leaky_relu(x, slope.filled(0.5))),
            (lk.leaky_relu_backward(x, operand, slope),
             lk.leaky_relu_backward(x, x, slope.filled(0.5))),
        ):
            assert isinstance(got, np.ma.MaskedArray) and got.dtype == dtype
            assert np.array_equal(np.ma.getmaskarray(got), union)
            assert bits_equal(got.data[~union], plain[~union])


def test_a_wholly_masked_slope_is_valid_and_masks_everything():
    slope = np.ma.masked_array([np.inf, np.nan], mask=[True, True])
    got = lk.leaky_relu(np.array([-1.0, 2.0]), slope)
    assert np.ma.getmaskarray(got).all()


def test_the_sign_mask_functions_refuse_masked_arrays():
    x = np.ma.masked_array([-1.0, 2.0], mask=[True, False])
    with pytest.raises(TypeError, match=r"^x is a masked array, whose mask the sign-mask"):
        lk.leaky_relu_forward_mask(x)
    with pytest.raises(TypeError, match=r"^negative_slope is a masked array"):
        lk.leaky_relu_forward_mask(x.data, x)
    _, mask = lk.leaky_relu_forward_mask(x.data)
    with pytest.raises(TypeError, match=r"^grad_output is a masked array"):
        lk.leaky_relu_backward_mask(x, mask)
    with pytest.raises(TypeError, match=r"^alpha is a masked array"):
        lk.leaky_relu_backward_mask(x.data, mask, alpha=x)


def test_the_slope_gradient_sums_nothing_under_a_mask():
    g = np.ma.masked_array([[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]], mask=[[0, 1, 0], [0, 1, 0]])
    x = np.ma.masked_array(-np.ones((2, 3)), mask=[[0, 0, 1], [0, 0, 0]])
    got = lk.leaky_relu_slope_grad(g, x, (3,))
    want = np.ma.sum(g * x, axis=0)  # np.ma's own sum of the visible terms
    assert isinstance(got, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(got), [False, True, False])
    assert np.array_equal(got.compressed(), want.compressed())
    total = lk.leaky_relu_slope_grad(g, x, ())
    assert total == want.sum() and not np.ma.is_masked(total)
    # Unmasked inputs still give a plain array.
    assert type(lk.leaky_relu_slope_grad(g.data, x.data, (3,))) is np.ndarray


def test_a_prelu_honours_a_masked_input():
    x = np.ma.masked_array([[-1.0, -2.0], [-3.0, 4.0]], mask=[[0, 1], [0, 0]])
    layer = lk.PReLU(np.full(2, 0.25))
    layer(x)
    grad_input, grad_slope = layer.backward(np.ones((2, 2)))
    assert np.array_equal(np.ma.getmaskarray(grad_input), x.mask)
    assert grad_slope.tolist() == [-4.0, 0.0]  # the masked -2 adds nothing


# ------------------------------------------------- Datasets, empty and nullable


@pytest.mark.parametrize("variable", ["a", "S", "U8"])
def test_a_dataset_is_refused_naming_the_argument(variable):
    dataset = xr.Dataset({variable: ("t", [1.0, -1.0])})
    with pytest.raises(TypeError, match=r"^x is an xarray.Dataset, which has no one dtype"):
        lk.leaky_relu(dataset)
    with pytest.raises(TypeError, match=r"^grad_output is an xarray.Dataset"):
        lk.leaky_relu_backward(dataset, np.ones(2))
    with pytest.raises(TypeError, match=r"^negative_slope is an xarray.Dataset"):
        lk.leaky_relu(np.ones(2), dataset)


@pytest.mark.parametrize(
    "frame", [pd.DataFrame(), pd.DataFrame(index=[1, 2]), pd.DataFrame({"a": []}, dtype="f4")],
    ids=["no rows or columns", "no columns", "no rows"],
)
def test_an_empty_dataframe_works_as_np_exp_does(frame):
    got = lk.leaky_relu(frame)
    assert isinstance(got, pd.DataFrame)
    assert got.shape == frame.shape and got.index.equals(frame.index)
    assert list(got.dtypes) == list(frame.dtypes)
    assert lk.leaky_relu_backward(frame, frame).shape == frame.shape


@pytest.mark.parametrize(
    "dtype, result", [("Float32", "Float32"), ("Float64", "Float64"), ("Int64", "Float64"),
                      ("boolean", "Float64")],
)
def test_a_nullable_series_keeps_its_dtype_and_na(dtype, result):
    values = [True, None, False] if dtype == "boolean" else [2, None, -4]
    x = pd.Series(values, dtype=dtype, index=["p", "q", "r"])
    got = lk.leaky_relu(x, 0.5)
    assert str(got.dtype) == result  # bool and integers compute in float64, as ndarrays do
    if dtype != "boolean":
        assert str(np.exp(x).dtype) == result
    assert got.index.equals(x.index)
    assert got.isna().tolist() == [False, True, False]
    assert got[["p", "r"]].tolist() == ([1.0, 0.0] if dtype == "boolean" else [2.0, -2.0])
    grad = lk.leaky_relu_backward(pd.Series([1.0, 1.0, 1.0], index=x.index), x, 0.5)
    assert grad.isna().tolist() == [False, True, False]


def test_a_dataframe_of_nullable_columns_is_refused_with_the_reason():
    frame = pd.DataFrame({"a": pd.Series([1.0, None], dtype="Float64")})
    with pytest.raises(TypeError, match=r"^x has column dtypes that NumPy's ufuncs cannot keep"):
        lk.leaky_relu(frame)


# ------------------------------------------------ tensors that require grad


def test_a_tensor_that_requires_grad_points_to_the_torch_bridge():
    torch = pytest.importorskip("torch")
    t = torch.ones(3, requires_grad=True)
    calls = {
        "x": lambda: lk.leaky_relu(t),
        "negative_slope": lambda: lk.leaky_relu(np.ones(3), t),
        "grad_output": lambda: lk.leaky_relu_backward(t, np.ones(3)),
        "x ": lambda: lk.leaky_relu_backward(np.ones(3), t),
        "x  ": lambda: lk.leaky_relu_forward_mask(t),
        "grad_output ": lambda: lk.leaky_relu_slope_grad(t, np.ones(3), (1,)),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError) as error:
            call()
        message = str(error.value)
        assert message.startswith(f"{name.strip()} is a tensor that requires grad"), message
        assert "leaky_kernel.torch" in message
    # Without grad, a tensor is an array like any other.
    assert lk.leaky_relu(t.detach(), 0.5).tolist() == [1.0, 1.0, 1.0]
