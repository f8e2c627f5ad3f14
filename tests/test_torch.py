"""leaky_kernel.torch: a drop-in for torch.nn.LeakyReLU whose outputs and
gradients equal torch's to the bit, whose autograd saves a 1-bit mask, and
which falls back to torch's operator for what the kernels do not take."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import leaky_kernel.torch as lkt  # noqa: E402  (after the importorskip)
from leaky_kernel._dispatch import kernels  # noqa: E402
from leaky_kernel._testing import bits_equal, random_operand  # noqa: E402

F = torch.nn.functional
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE
SLOPES = [0.01, 0.0, 0.2, -0.5, 3.0, 1e-42]
DTYPES = [torch.float32, torch.float64]
SHAPES = [(), (0,), (1,), (13,), (5, 7, 3), (3 * PARALLEL_MIN_SIZE + 5,)]
NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


@pytest.fixture
def tensor(rng):
    """tensor(shape, dtype): values over many magnitudes with ~5% special
    values (signed zeros, NaN, infinities, subnormals, huge)."""

    def make(shape, dtype):
        size = int(np.prod(shape))
        return torch.from_numpy(random_operand(rng, size, NUMPY_DTYPES[dtype]).reshape(shape))

    return make


def torch_bits_equal(a, b):
    return a.dtype == b.dtype and bits_equal(a.detach().numpy(), b.detach().numpy())


def output_and_grad(function, x, g):
    x = x.clone().requires_grad_(True)
    y = function(x)
    y.backward(g)
    return y, x.grad


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("slope", SLOPES)
def test_output_and_gradient_equal_torch_to_the_bit(tensor, slope, dtype, shape):
    x, g = tensor(shape, dtype), tensor(shape, dtype)
    y, dx = output_and_grad(lambda t: lkt.leaky_relu(t, slope), x, g)
    expected_y, expected_dx = output_and_grad(lambda t: F.leaky_relu(t, slope), x, g)
    assert torch_bits_equal(y, expected_y)
    assert torch_bits_equal(dx, expected_dx)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("slope", [0.01, 0.0, 0.2])
def test_inplace_equals_torch_inplace(tensor, dtype, slope):
    # torch's own in-place backward supports slopes >= 0 only.
    x, g = tensor((3 * PARALLEL_MIN_SIZE + 5,), dtype), tensor((3 * PARALLEL_MIN_SIZE + 5,), dtype)

    def through_inplace(function):
        leaf = x.clone().requires_grad_(True)
        hidden = leaf * 1  # not a leaf: in-place is allowed on it
        version = hidden._version
        y = function(hidden)
        assert y is hidden and hidden._version > version
        y.backward(g)
        return y, leaf.grad

    y, dx = through_inplace(lambda t: lkt.leaky_relu(t, slope, inplace=True))
    expected_y, expected_dx = through_inplace(lambda t: F.leaky_relu(t, slope, inplace=True))
    assert torch_bits_equal(y, expected_y)
    assert torch_bits_equal(dx, expected_dx)


def test_inplace_with_a_negative_slope_keeps_the_input_gradient(tensor):
    # The mask is of the input, so unlike torch's in-place backward (which
    # reads the output) a negative slope is fine.
    x, g = tensor((1000,), torch.float32), tensor((1000,), torch.float32)
    leaf = x.clone().requires_grad_(True)
    lkt.leaky_relu(leaf * 1, -0.5, inplace=True).backward(g)
    _, expected_dx = output_and_grad(lambda t: F.leaky_relu(t, -0.5), x, g)
    assert torch_bits_equal(leaf.grad, expected_dx)


def test_inplace_on_a_leaf_that_requires_grad_is_refused_as_by_torch():
    leaf = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        lkt.leaky_relu(leaf, inplace=True)


def test_autograd_saves_a_one_bit_mask_not_the_input(tensor):
    x = tensor((1000,), torch.float32).requires_grad_(True)
    y = lkt.leaky_relu(x)
    (mask,) = y.grad_fn.saved_tensors
    assert mask.dtype == torch.uint8 and mask.numel() == 125
    assert bits_equal(mask.numpy(), np.packbits((x.detach().numpy() > 0), bitorder="little"))


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.T,  # non-contiguous: computed on a C-ordered copy
        lambda t: t[:, ::2],
        lambda t: t.expand(3, 4, 6)[1],  # a zero stride
    ],
    ids=["transposed", "stepped", "expanded"],
)
def test_non_contiguous_inputs_and_gradients(tensor, make):
    x, g = tensor((4, 6), torch.float64), tensor((4, 6), torch.float64)
    base = x.clone().requires_grad_(True)
    y = lkt.leaky_relu(make(base), 0.3)
    y.backward(make(g))
    expected_base = x.clone().requires_grad_(True)
    expected_y = F.leaky_relu(make(expected_base), 0.3)
    expected_y.backward(make(g))
    assert type(y.grad_fn).__name__ == "_LeakyReLUFunctionBackward"  # the kernel took it
    assert torch_bits_equal(y.contiguous(), expected_y.contiguous())
    assert torch_bits_equal(base.grad, expected_base.grad)


def test_inplace_on_a_non_contiguous_tensor_falls_back_to_torch(tensor):
    x = tensor((4, 6), torch.float32)
    view = x.T
    expected = F.leaky_relu(view.clone(), 0.3)
    assert lkt.leaky_relu(view, 0.3, inplace=True) is view
    assert torch_bits_equal(view.contiguous(), expected.contiguous())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_other_dtypes_fall_back_to_torch(dtype):
    x = torch.linspace(-3, 3, 50, dtype=dtype, requires_grad=True)
    y = lkt.leaky_relu(x, 0.1)
    assert y.grad_fn.name() == F.leaky_relu(x, 0.1).grad_fn.name()
    assert torch.equal(y, F.leaky_relu(x, 0.1))


@pytest.mark.parametrize("slope", [float("inf"), float("-inf"), float("nan")])
def test_slopes_the_kernels_do_not_take_go_to_torch(tensor, slope):
    x = tensor((100,), torch.float32)
    assert torch_bits_equal(lkt.leaky_relu(x, slope), F.leaky_relu(x, slope))


def test_integer_tensors_fail_as_in_torch():
    x = torch.arange(-3, 3)
    with pytest.raises(RuntimeError) as ours:
        lkt.leaky_relu(x)
    with pytest.raises(RuntimeError) as theirs:
        F.leaky_relu(x)
    assert str(ours.value) == str(theirs.value)


def test_gradcheck_in_float64():
    x = torch.randn(4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = (x + torch.sign(x) * 0.1).requires_grad_(True)  # no input within gradcheck's eps of 0
    for slope in (0.01, -0.5, 2.0):
        assert torch.autograd.gradcheck(lambda t: lkt.leaky_relu(t, slope), (x,))


def test_double_backward_is_refused():
    # The backward is not itself differentiable: differentiating it again
    # (here with respect to the incoming gradient) is an error, not a wrong 0.
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    v = torch.ones(5, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(lkt.leaky_relu(x), x, grad_outputs=v, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        grad.sum().backward()


def test_no_grad_and_inputs_without_grad(tensor):
    x = tensor((100,), torch.float32)
    with torch.no_grad():
        assert torch_bits_equal(lkt.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))
    y = lkt.leaky_relu(x, 0.2)
    assert not y.requires_grad
    assert torch_bits_equal(y, F.leaky_relu(x, 0.2))


def test_module_is_a_drop_in_for_torch_nn_leaky_relu():
    for kwargs in ({}, {"negative_slope": 0.2}, {"negative_slope": 0.1, "inplace": True}):
        ours, theirs = lkt.LeakyReLU(**kwargs), torch.nn.LeakyReLU(**kwargs)
        assert isinstance(ours, torch.nn.Module)
        assert ours.extra_repr() == theirs.extra_repr()
        assert repr(ours) == repr(theirs)
        assert ours.negative_slope == theirs.negative_slope and ours.inplace == theirs.inplace
        assert ours.state_dict() == {} and list(ours.parameters()) == []
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(lkt.LeakyReLU(0.2)(x), torch.nn.LeakyReLU(0.2)(x))


def test_a_small_model_trains():
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    inputs = torch.randn(256, 8, generator=generator)
    targets = torch.sin(inputs @ torch.randn(8, 1, generator=generator))
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), lkt.LeakyReLU(0.1), torch.nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = F.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert isinstance(model[1], lkt.LeakyReLU)
