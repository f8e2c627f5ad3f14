"""leaky_kernel.LeakyReLU and PReLU: forward and backward through the saved sign mask,
in place, what it keeps alive, its errors and its repr."""
import copy
import gc
import pickle
import weakref

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal

PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE


@pytest.mark.parametrize(
    "shape", [(3, 5), (7,), (), (301, 219)], ids=["2d", "1d", "0d", "parallel"]
)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("slope", [0.01, 0.0, -0.5, 3.0])
def test_forward_and_backward_match_the_functions(make_operand, slope, dtype, shape):
    size = int(np.prod(shape))  # drawn flat: make_operand draws no 0-d arrays
    x, g = make_operand(size, dtype).reshape(shape), make_operand(size, dtype).reshape(shape)
    layer = lk.LeakyReLU(slope)
    y = layer(x)
    assert bits_equal(y, reference.leaky_relu(x, slope))
    assert bits_equal(layer.backward(g), reference.leaky_relu_backward(g, x, slope))


def test_call_is_forward(make_operand):
    x = make_operand((4, 9), np.float32)
    assert bits_equal(lk.LeakyReLU(0.2)(x), lk.LeakyReLU(0.2).forward(x))


def test_forward_saves_the_packed_sign_mask(make_operand):
    x = make_operand((5, 13), np.float32)
    layer = lk.LeakyReLU()
    layer(x)
    assert bits_equal(layer._mask, np.packbits((x > 0).reshape(-1), bitorder="little"))


@pytest.mark.parametrize("n_threads", [None, 1, 3])
def test_backward_uses_the_last_forward(make_operand, n_threads):
    layer = lk.LeakyReLU(0.1, num_threads=n_threads)
    x1, x2 = make_operand(3 * PARALLEL_MIN_SIZE + 1, np.float32), make_operand(10, np.float64)
    g2 = make_operand(10, np.float64)
    layer(x1)
    layer(x2)
    assert bits_equal(layer.backward(g2), reference.leaky_relu_backward(g2, x2, 0.1))
    # The mask stays: backward may run again.
    assert bits_equal(layer.backward(g2), reference.leaky_relu_backward(g2, x2, 0.1))


def test_forwards_of_one_size_reuse_the_mask_memory(make_operand):
    # The new mask overwrites the old one, which the layer no longer needs.
    layer = lk.LeakyReLU(0.1)
    x1, x2, g = (make_operand((40, 50), np.float32) for _ in range(3))
    layer(x1)
    first_mask = layer._mask
    layer(x2)
    assert layer._mask is first_mask
    assert bits_equal(layer.backward(g), reference.leaky_relu_backward(g, x2, 0.1))
    layer(x2[:, :49])
    assert layer._mask is not first_mask


@pytest.mark.parametrize("slope", [0.2, -0.5])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_inplace_overwrites_x_and_backward_still_sees_its_signs(make_operand, dtype, slope):
    # The mask is taken before x is overwritten, so even a negative slope
    # (which flips signs) gives the input's gradient.
    x, g = make_operand((301, 219), dtype), make_operand((301, 219), dtype)
    x_before = x.copy()
    layer = lk.LeakyReLU(slope, inplace=True)
    assert layer(x) is x
    assert bits_equal(x, reference.leaky_relu(x_before, slope))
    assert bits_equal(layer.backward(g), reference.leaky_relu_backward(g, x_before, slope))


@pytest.mark.parametrize("inplace", [False, True])
def test_the_layer_does_not_keep_the_input_alive(make_operand, inplace):
    layer = lk.LeakyReLU(inplace=inplace)
    x = make_operand((64, 64), np.float32)
    alive = weakref.ref(x)
    y = layer(x)
    del x, y
    gc.collect()
    assert alive() is None
    assert layer.backward(np.ones((64, 64), np.float32)).shape == (64, 64)


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        lk.LeakyReLU().backward(np.ones(3))


@pytest.mark.parametrize("grad_shape", [(3, 4), (12,), (4, 3, 1)])
def test_backward_with_another_shape_is_an_error(grad_shape):
    layer = lk.LeakyReLU()
    layer(np.ones((4, 3)))
    message = r"grad_output must have the shape of the last forward's input, \(4, 3\)"
    with pytest.raises(ValueError, match=message):
        layer.backward(np.ones(grad_shape))


def test_negative_slope_is_an_attribute_shown_by_repr():
    layer = lk.LeakyReLU()
    assert layer.negative_slope == 0.01
    assert repr(layer) == "LeakyReLU(negative_slope=0.01)"
    assert repr(lk.LeakyReLU(0.2, inplace=True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    layer = lk.LeakyReLU(alpha=0.3, num_threads=2)
    assert repr(layer) == "LeakyReLU(negative_slope=0.3, num_threads=2)"


@pytest.mark.parametrize(
    "args, kwargs, error, name",
    [
        ((0.1,), {"alpha": 0.2}, TypeError, "alpha"),
        (("0.1",), {}, TypeError, "negative_slope"),
        ((np.nan,), {}, ValueError, "negative_slope"),
        ((), {"num_threads": 0}, ValueError, "num_threads"),
        ((), {"inplace": "yes"}, TypeError, "inplace"),
    ],
)
def test_constructor_errors_name_the_argument(args, kwargs, error, name):
    with pytest.raises(error, match=name):
        lk.LeakyReLU(*args, **kwargs)


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(
    "x, error",
    [
        ([1.0, -1.0], TypeError),
        (np.array([1, -1]), TypeError),
        (np.array([1.0, -1.0], ">f8"), TypeError),
        (_read_only(np.array([1.0, -1.0])), ValueError),
    ],
    ids=["list", "int", "byte-swapped", "read-only"],
)
def test_inplace_needs_an_array_that_holds_its_result(x, error):
    layer = lk.LeakyReLU(inplace=True)
    x_before = np.array(x, copy=True)
    with pytest.raises(error, match="inplace=True"):
        layer(x)
    assert bits_equal(np.asarray(x), x_before)


def test_a_failed_forward_keeps_the_previous_mask():
    layer = lk.LeakyReLU()
    layer(np.array([-1.0, 2.0]))
    with pytest.raises(TypeError):
        layer(np.array([1j, 2j]))
    assert bits_equal(layer.backward(np.ones(2)), np.array([0.01, 1.0]))


# ------------------------------------------------------------------- PReLU


def test_a_prelu_pickle_carries_the_layer_not_the_last_batch():
    layer = lk.PReLU(np.full(4, 0.25, np.float32))
    empty = len(pickle.dumps(layer))
    x = np.random.default_rng(0).standard_normal((1 << 16, 4)).astype(np.float32)  # 1 MiB
    layer(x)
    data = pickle.dumps(layer)
    assert len(data) < empty + 1024, f"{len(data)} bytes pickled for a {x.nbytes}-byte batch"
    restored = pickle.loads(data)
    assert bits_equal(restored.slope, layer.slope) and restored.num_threads == layer.num_threads
    with pytest.raises(RuntimeError, match="backward called before forward"):
        restored.backward(np.ones_like(x))
    # The original still has its batch for the backward.
    grad_input, _ = layer.backward(np.ones_like(x))
    assert bits_equal(grad_input, reference.leaky_relu_backward(np.ones_like(x), x, layer.slope))


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy])
def test_a_prelu_copy_has_its_own_slope(duplicate):
    layer = lk.PReLU(np.full(3, 0.25))
    x = np.array([[-1.0, -2.0, 3.0]])
    layer(x)
    twin = duplicate(layer)
    assert twin.slope is not layer.slope and not np.shares_memory(twin.slope, layer.slope)
    twin.slope -= 1.0  # a training step on the copy
    assert layer.slope.tolist() == [0.25, 0.25, 0.25]
    layer.slope *= 2.0
    assert twin.slope.tolist() == [-0.75, -0.75, -0.75]


def test_a_shallow_prelu_copy_can_run_the_backward_of_the_last_forward():
    layer = lk.PReLU(np.full(3, 0.25))
    x = np.array([[-1.0, -2.0, 3.0]])
    layer(x)
    _, grad_slope = copy.copy(layer).backward(np.ones((1, 3)))
    assert grad_slope.tolist() == [-1.0, -2.0, 0.0]


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy])
def test_a_leaky_relu_copy_has_its_own_slope_array(duplicate):
    layer = lk.LeakyReLU(np.full(3, 0.25))
    twin = duplicate(layer)
    twin.negative_slope *= 2.0
    assert layer.negative_slope.tolist() == [0.25, 0.25, 0.25]
