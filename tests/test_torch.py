"""leaky_kernel.torch: a drop-in for torch.nn.LeakyReLU whose outputs and
gradients equal torch's to the bit, with torch's strides, whose autograd
saves a 1-bit mask, whose backward is differentiable as torch's is, which
works under torch.func, and which falls back to torch's operator for what the
kernels do not take.

Most tests lower KERNEL_MIN_NUMEL to 0 so that small tensors take the
kernel's path; each checks that they did."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import leaky_kernel.torch as lkt  # noqa: E402  (after the importorskip)
from leaky_kernel._dispatch import kernels  # noqa: E402
from leaky_kernel._testing import bits_equal, random_operand  # noqa: E402

F = torch.nn.functional
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE
SLOPES = [0.01, 0.0, 0.2, -0.5, 3.0, 1e-42]
DTYPES = [torch.float32, torch.float64]
SHAPES = [(), (1,), (13,), (5, 7, 3), (3 * PARALLEL_MIN_SIZE + 5,)]
NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}
KERNEL_NODES = {"_LeakyReLUBackward", "_LeakyReLUInplaceBackward"}
DEFAULT_KERNEL_MIN_NUMEL = lkt.KERNEL_MIN_NUMEL  # before the fixture below lowers it


@pytest.fixture(autouse=True)
def kernel_for_every_size(monkeypatch):
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", 0)


@pytest.fixture
def tensor(rng):
    """tensor(shape, dtype): values over many magnitudes, of both signs, with
    ~5% special values (signed zeros, NaN, infinities, subnormals, huge)."""

    def make(shape, dtype=torch.float32):
        size = int(np.prod(shape))
        return torch.from_numpy(random_operand(rng, size, NUMPY_DTYPES[dtype]).reshape(shape))

    return make


def torch_bits_equal(a, b):
    """Same dtype, shape, strides and bits (NaNs equal wherever both are
    NaN), or both None (no gradient)."""
    if a is None or b is None:
        return a is b
    a, b = a.detach().resolve_neg(), b.detach().resolve_neg()
    return (
        a.dtype == b.dtype
        and layout(a) == layout(b)
        and bits_equal(a.numpy(), b.numpy())
    )


def layout(t):
    """The strides that place t's elements in memory: those of its
    dimensions longer than 1. (The operators take their strides from torch's
    meta functions, which torch.compile uses too; for dimensions of length 1
    these can differ from torch's eager CPU kernels.)"""
    return tuple(s for s, n in zip(t.stride(), t.shape) if n > 1)


def took_kernel(y):
    return type(y.grad_fn).__name__ in KERNEL_NODES


def assert_kernel_equals_torch(run):
    """run(function) -> (output, gradient), computed through `function`: the
    bridge takes the kernel's path and gives torch's bits and strides."""
    y, dx = run(lkt.leaky_relu)
    assert took_kernel(y)
    expected_y, expected_dx = run(F.leaky_relu)
    assert torch_bits_equal(y, expected_y)
    assert torch_bits_equal(dx, expected_dx)


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
    assert_kernel_equals_torch(lambda function: output_and_grad(lambda t: function(t, slope), x, g))


def test_sizes_below_kernel_min_numel_go_to_torch(tensor, monkeypatch):
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", 1000)
    small = tensor((999,)).requires_grad_(True)
    large = tensor((1000,)).requires_grad_(True)
    assert lkt.leaky_relu(small).grad_fn.name() == F.leaky_relu(small).grad_fn.name()
    assert took_kernel(lkt.leaky_relu(large))


def test_empty_tensors_go_to_torch():
    x = torch.empty(0, 3, requires_grad=True)
    y = lkt.leaky_relu(x)
    assert not took_kernel(y)
    assert y.shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("slope", [0.01, 0.0, 0.2])
def test_inplace_equals_torch_inplace(tensor, dtype, slope):
    # torch's own in-place backward supports slopes >= 0 only.
    x, g = tensor((3 * PARALLEL_MIN_SIZE + 5,), dtype), tensor((3 * PARALLEL_MIN_SIZE + 5,), dtype)

    def through_inplace(function):
        leaf = x.clone().requires_grad_(True)
        hidden = leaf * 1  # not a leaf: in-place is allowed on it
        version = hidden._version
        y = function(hidden, slope, inplace=True)
        assert y is hidden and hidden._version > version
        y.backward(g)
        return y, leaf.grad

    assert_kernel_equals_torch(through_inplace)


def test_inplace_with_a_negative_slope_keeps_the_input_gradient(tensor):
    # The mask is of the input, so unlike torch's in-place backward (which
    # reads the output) a negative slope is fine.
    x, g = tensor((1000,)), tensor((1000,))
    leaf = x.clone().requires_grad_(True)
    y = lkt.leaky_relu(leaf * 1, -0.5, inplace=True)
    assert took_kernel(y)
    y.backward(g)
    _, expected_dx = output_and_grad(lambda t: F.leaky_relu(t, -0.5), x, g)
    assert torch_bits_equal(leaf.grad, expected_dx)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_inplace_without_autograd_runs_the_kernel(tensor, dtype, monkeypatch):
    calls = []
    kernel = lkt._np_leaky_relu
    monkeypatch.setattr(lkt, "_np_leaky_relu", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    x = tensor((3 * PARALLEL_MIN_SIZE + 5,), dtype)
    expected = F.leaky_relu(x, 0.2)
    for context in (torch.no_grad, torch.inference_mode):
        target = x.clone()
        with context():
            version = target._version
            assert lkt.leaky_relu(target, 0.2, inplace=True) is target
        assert torch_bits_equal(target, expected)
        assert context is torch.inference_mode or target._version > version
    assert len(calls) == 2


@pytest.mark.parametrize("transform", ["forward_ad", "jvp", "grad", "vmap_of_grad", "jacrev"])
def test_inplace_under_torch_func_and_forward_ad_equals_torch(tensor, transform):
    x, t = tensor((4, 5), torch.float64), tensor((4, 5), torch.float64)

    def inplace(function):
        return lambda a: function(a * 1, 0.2, inplace=True)

    def run(function):
        f = inplace(function)
        if transform == "forward_ad":
            with torch.autograd.forward_ad.dual_level():
                out = f(torch.autograd.forward_ad.make_dual(x, t))
                return torch.autograd.forward_ad.unpack_dual(out)
        if transform == "jvp":
            return torch.func.jvp(f, (x,), (t,))
        loss = lambda a: (f(a) * torch.arange(5.0, dtype=a.dtype)).sum()  # noqa: E731
        if transform == "grad":
            return (torch.func.grad(loss)(x),)
        if transform == "vmap_of_grad":
            return (torch.func.vmap(torch.func.grad(loss))(x),)
        return (torch.func.jacrev(f)(x[0]),)

    for ours, theirs in zip(run(lkt.leaky_relu), run(F.leaky_relu)):
        assert torch_bits_equal(ours, theirs)


def _refused_inplace_cases():
    def leaf():
        return torch.tensor([-2.0, 1.0, -4.0], requires_grad=True), None

    def view_of_leaf():
        base = torch.tensor([-2.0, 1.0, -4.0], requires_grad=True)
        return base, base[1:]

    def view_of_a_multi_output_op():
        base = torch.tensor([-2.0, 1.0, -4.0, 3.0], requires_grad=True)
        hidden = base * 1
        return hidden, hidden.unbind()[0]

    return [leaf, view_of_leaf, view_of_a_multi_output_op]


def _refuse(make, function):
    """(error message, memory before, memory after) of an in-place call that fails."""
    owner, view = make()
    target = owner if view is None else view
    before = owner.detach().clone()
    with pytest.raises(RuntimeError) as error:
        function(target, 0.5, inplace=True)
    return str(error.value), before.view(torch.int32), owner.detach().view(torch.int32)


@pytest.mark.parametrize("make", _refused_inplace_cases(), ids=lambda f: f.__name__)
def test_inplace_refusals_come_before_any_write(make):
    ours, before, after = _refuse(make, lkt.leaky_relu)
    theirs, _, _ = _refuse(make, F.leaky_relu)
    assert ours == theirs
    assert torch.equal(after, before)


def test_inplace_on_an_inference_tensor_outside_inference_mode_is_as_torch():
    # torch itself writes before it refuses this one; the bridge leaves it to torch.
    def make():
        with torch.inference_mode():
            return torch.tensor([-2.0, 1.0, -4.0]), None

    ours, _, ours_after = _refuse(make, lkt.leaky_relu)
    theirs, _, theirs_after = _refuse(make, F.leaky_relu)
    assert ours == theirs
    assert torch.equal(ours_after, theirs_after)


def test_inplace_on_a_leaf_under_no_grad_is_allowed_as_by_torch(tensor):
    x = tensor((100,))
    results = []
    for function in (lkt.leaky_relu, F.leaky_relu):
        leaf = x.clone().requires_grad_(True)
        with torch.no_grad():
            assert function(leaf, 0.3, inplace=True) is leaf
        results.append(leaf)
    assert torch_bits_equal(*results)


def test_autograd_saves_a_one_bit_mask_not_the_input(tensor):
    x = tensor((1000,)).requires_grad_(True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = lkt.leaky_relu(x)
    assert took_kernel(y)
    assert sum(t.numel() * t.element_size() for t in saved) == 125
    (mask,) = [t for t in saved if t.numel()]
    assert mask.dtype == torch.uint8
    assert bits_equal(mask.numpy(), np.packbits((x.detach().numpy() > 0), bitorder="little"))


def test_a_four_layer_mlp_saves_at_most_0_6_of_torchs_bytes(monkeypatch):
    # Issue 14's memory target, at the bridge's own size line: 4096 x 256
    # activations must take the kernel's path.
    monkeypatch.setattr(lkt, "KERNEL_MIN_NUMEL", DEFAULT_KERNEL_MIN_NUMEL)
    inputs = torch.randn(4096, 256, generator=torch.Generator().manual_seed(0))

    def saved_bytes(activation):
        layers = []
        for _ in range(4):
            layers += [torch.nn.Linear(256, 256), activation(0.01)]
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: sizes.append(t.numel() * t.element_size()) or t, lambda t: t
        ):
            torch.nn.Sequential(*layers)(inputs)
        return sum(sizes)

    assert saved_bytes(lkt.LeakyReLU) <= 0.6 * saved_bytes(torch.nn.LeakyReLU)


def test_the_mask_follows_the_tensors_memory_order(tensor):
    # A transposed input is read as it lies in memory: no copy to C order.
    x = tensor((40, 24)).T.requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        lkt.leaky_relu(x)
    (mask,) = [t for t in saved if t.numel()]
    in_memory = x.detach().T.numpy()
    assert bits_equal(mask.numpy(), np.packbits(in_memory > 0, bitorder="little"))


def _layouts():
    """(name, shape, make): make turns a C-ordered tensor of `shape` into one
    with the same values and shape in another layout."""
    def stepped(t):
        return torch.empty(t.shape[0], t.shape[1] * 2, dtype=t.dtype)[:, ::2].copy_(t)

    def expanded(t):
        return t[:1].expand(t.shape)

    def odd_unit_strides(t):
        return t.as_strided(t.shape, (t.shape[1], 7, 1))

    return [
        ("channels_last", (2, 3, 4, 5), lambda t: t.contiguous(memory_format=torch.channels_last)),
        ("channels_last_3d", (2, 3, 2, 4, 5),
         lambda t: t.contiguous(memory_format=torch.channels_last_3d)),
        ("transposed", (6, 9), lambda t: t.T.contiguous().T),
        ("permuted", (3, 4, 5), lambda t: t.permute(2, 0, 1).contiguous().permute(1, 2, 0)),
        ("stepped", (4, 6), stepped),
        ("expanded", (3, 8), expanded),
        ("unit_dim_odd_stride", (5, 1, 6), odd_unit_strides),
    ]


LAYOUTS = _layouts()


@pytest.mark.parametrize("name, shape, make", LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
@pytest.mark.parametrize("grad_layout", ["same", "contiguous"])
def test_memory_format_and_strides_as_torch_for_output_and_gradient(
    tensor, name, shape, make, grad_layout
):
    x, g = tensor(shape, torch.float64), tensor(shape, torch.float64)
    g = make(g) if grad_layout == "same" else g

    def run(function):
        leaf = x.clone().requires_grad_(True)
        y = function(make(leaf), 0.3)
        y.backward(g)
        return y, leaf.grad

    assert_kernel_equals_torch(run)
    # The gradient as the activation's backward returns it, before any accumulation.
    direct = make(x).requires_grad_(True)
    (ours,) = torch.autograd.grad(lkt.leaky_relu(direct, 0.3), direct, g)
    (theirs,) = torch.autograd.grad(F.leaky_relu(direct, 0.3), direct, g)
    assert torch_bits_equal(ours, theirs)


def laid_out(draw, values):
    """`values` (C-ordered) copied into a view with a drawn memory order of
    its dimensions and drawn steps between elements."""
    order = draw(st.permutations(range(values.dim())))
    steps = [draw(st.integers(1, 2)) for _ in range(values.dim())]
    storage = torch.zeros([values.shape[d] * steps[d] for d in order], dtype=values.dtype)
    view = storage[tuple(slice(None, None, steps[d]) for d in order)]
    return view.permute(np.argsort(order).tolist()).copy_(values)


@settings(max_examples=60)
@given(data=st.data())
def test_strides_of_drawn_layouts_are_torchs(data):
    # The input and the incoming gradient each in a drawn layout, the
    # gradient perhaps broadcast along one dimension.
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    size = int(np.prod(shape))
    x = laid_out(data.draw, torch.linspace(-3, 2, size, dtype=torch.float64).reshape(shape))
    g = laid_out(data.draw, torch.linspace(2, -1, size, dtype=torch.float64).reshape(shape))
    broadcast = data.draw(st.sampled_from([None, *range(len(shape))]))
    if broadcast is not None:  # a zero stride, as `y.sum().backward()` gives
        g = g.narrow(broadcast, 0, 1).expand(shape)
    x.requires_grad_(True)

    def run(function):
        y = function(x, 0.3)
        return y, torch.autograd.grad(y, x, g)[0]

    assert_kernel_equals_torch(run)


@pytest.mark.parametrize(
    "memory_format", [torch.channels_last, torch.contiguous_format], ids=str
)
def test_inplace_keeps_the_tensors_layout(tensor, memory_format):
    x, g = tensor((2, 3, 4, 5)), tensor((2, 3, 4, 5))

    def run(function):
        leaf = x.clone().requires_grad_(True)
        hidden = (leaf * 1).contiguous(memory_format=memory_format)
        y = function(hidden, 0.1, inplace=True)
        assert y is hidden
        y.backward(g)
        return y, leaf.grad

    assert_kernel_equals_torch(run)


@pytest.mark.parametrize(
    "memory_format", [torch.channels_last, torch.contiguous_format], ids=str
)
def test_inplace_without_autograd_keeps_the_tensors_layout(tensor, memory_format, monkeypatch):
    calls = []
    kernel = lkt._np_leaky_relu
    monkeypatch.setattr(lkt, "_np_leaky_relu", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    x = tensor((2, 3, 4, 5)).contiguous(memory_format=memory_format)
    expected = F.leaky_relu(x, 0.1)
    with torch.no_grad():
        assert lkt.leaky_relu(x, 0.1, inplace=True) is x
    assert calls and x.is_contiguous(memory_format=memory_format)
    assert torch_bits_equal(x, expected)


def test_inplace_on_a_tensor_with_gaps_falls_back_to_torch(tensor):
    x = tensor((4, 6))
    view = x[:, ::2]
    expected = F.leaky_relu(view.clone(), 0.3)
    assert lkt.leaky_relu(view, 0.3, inplace=True) is view
    assert torch_bits_equal(view.contiguous(), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_torch_func_grad_vmap_and_jacrev_equal_torch(tensor, dtype):
    x = tensor((4, 5), dtype)

    def loss(function):
        return lambda t: (function(t, 0.2) * torch.arange(5.0, dtype=t.dtype)).sum()

    ours, theirs = lkt.leaky_relu, F.leaky_relu
    assert torch_bits_equal(torch.func.grad(loss(ours))(x), torch.func.grad(loss(theirs))(x))
    assert torch_bits_equal(
        torch.func.vmap(lambda t: ours(t, 0.2))(x), torch.func.vmap(lambda t: theirs(t, 0.2))(x)
    )
    assert torch_bits_equal(
        torch.func.jacrev(lambda t: ours(t, 0.2))(x[0]),
        torch.func.jacrev(lambda t: theirs(t, 0.2))(x[0]),
    )
    assert torch_bits_equal(
        torch.func.vmap(torch.func.grad(loss(ours)))(x.reshape(2, 2, 5)),
        torch.func.vmap(torch.func.grad(loss(theirs)))(x.reshape(2, 2, 5)),
    )


def test_torch_func_runs_the_kernel_under_grad_and_jacrev(tensor, monkeypatch):
    # Not torch's operator in disguise: the kernel computes, and jacrev's
    # batched backward reads the mask.
    calls = []
    forward = lkt._np_forward_mask
    monkeypatch.setattr(
        lkt, "_np_forward_mask", lambda *a, **k: calls.append(1) or forward(*a, **k)
    )
    x = tensor((6,), torch.float64)
    torch.func.grad(lambda t: lkt.leaky_relu(t, 0.2).sum())(x)
    torch.func.jacrev(lambda t: lkt.leaky_relu(t, 0.2))(x)
    assert len(calls) == 2


@pytest.mark.parametrize("slope", [0.2, -0.5])
def test_forward_mode_ad_equals_torch(tensor, slope):
    x, t = tensor((4, 6), torch.float64), tensor((4, 6), torch.float64)

    def tangent(function):
        with torch.autograd.forward_ad.dual_level():
            dual = torch.autograd.forward_ad.make_dual(x, t)
            out = function(dual, slope)
            return torch.autograd.forward_ad.unpack_dual(out).tangent

    assert torch_bits_equal(tangent(lkt.leaky_relu), tangent(F.leaky_relu))

    def jvp(function):
        return torch.func.jvp(lambda a: function(a, slope), (x,), (t,))

    for ours, theirs in zip(jvp(lkt.leaky_relu), jvp(F.leaky_relu)):
        assert torch_bits_equal(ours, theirs)
    assert torch_bits_equal(
        torch.func.jacfwd(lambda a: lkt.leaky_relu(a, slope))(x[0]),
        torch.func.jacfwd(lambda a: F.leaky_relu(a, slope))(x[0]),
    )


def test_forward_mode_ad_runs_the_kernel(tensor, monkeypatch):
    calls = []
    backward = lkt._np_backward_mask
    monkeypatch.setattr(
        lkt, "_np_backward_mask", lambda *a, **k: calls.append(1) or backward(*a, **k)
    )
    x, t = tensor((50,), torch.float64), tensor((50,), torch.float64)
    torch.func.jvp(lambda a: lkt.leaky_relu(a, 0.2), (x,), (t,))
    assert calls == [1]  # the tangent is the backward kernel's select


@pytest.mark.parametrize("transform", ["hessian", "jacrev_of_jacrev", "jvp_of_grad"])
def test_second_order_torch_func_equals_torch(tensor, transform):
    x = tensor((7,), torch.float64)

    def second(function):
        loss = lambda a: (function(a, 0.3) ** 2).sum()  # noqa: E731
        if transform == "hessian":
            return torch.func.hessian(loss)(x)
        if transform == "jacrev_of_jacrev":
            return torch.func.jacrev(torch.func.jacrev(loss))(x)
        return torch.func.jvp(torch.func.grad(loss), (x,), (torch.ones_like(x),))[1]

    assert torch_bits_equal(second(lkt.leaky_relu), second(F.leaky_relu))


def test_vmap_of_grad_keeps_one_mask_per_example(tensor):
    # Examples laid out transposed in memory, of 15 elements (not whole
    # bytes of mask): each example's bits must be read back as its own.
    batch = tensor((3, 5, 3), torch.float64).transpose(1, 2)

    def per_example_grads(function):
        loss = lambda a: (function(a, -0.5) * torch.arange(5.0, dtype=a.dtype)).sum()  # noqa: E731
        return torch.func.vmap(torch.func.grad(loss))(batch)

    assert torch_bits_equal(per_example_grads(lkt.leaky_relu), per_example_grads(F.leaky_relu))


def test_torch_func_grad_of_grad_equals_torch(tensor):
    x = tensor((7,), torch.float64)

    def curvature(function):
        inner = torch.func.grad(lambda t: (function(t, 0.3) ** 2).sum())
        return torch.func.grad(lambda t: inner(t).sum())(x)

    assert torch_bits_equal(curvature(lkt.leaky_relu), curvature(F.leaky_relu))


def test_double_backward_equals_torch(tensor):
    # With respect to the incoming gradient the gradient is the same select;
    # with respect to the input it is zero, and connected, as in torch.
    x, v = tensor((50,), torch.float64), tensor((50,), torch.float64)

    def second_order(function):
        xs, vs = x.clone().requires_grad_(True), v.clone().requires_grad_(True)
        y = function(xs, 0.3)
        (grad,) = torch.autograd.grad(y, xs, grad_outputs=vs, create_graph=True)
        return grad, torch.autograd.grad((grad * grad.detach().sign()).sum(), [xs, vs])

    (grad, (dx, dv)), (expected_grad, (expected_dx, expected_dv)) = (
        second_order(lkt.leaky_relu), second_order(F.leaky_relu)
    )
    assert type(grad.grad_fn).__name__ == "_LeakyReLUGradBackward"
    assert torch_bits_equal(grad, expected_grad)
    assert torch_bits_equal(dx, expected_dx)
    assert torch_bits_equal(dv, expected_dv)


def test_gradient_penalty_in_a_model_equals_torch(tensor):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(16, 6, generator=generator, dtype=torch.float64)

    def penalty_grads(activation):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(6, 12), activation(0.1), torch.nn.Linear(12, 1)
        ).double()
        x = inputs.clone().requires_grad_(True)
        hidden = model[1](model[0](x))
        assert took_kernel(hidden) == (activation is lkt.LeakyReLU)
        (grad,) = torch.autograd.grad(model[2](hidden).sum(), x, create_graph=True)
        ((grad.norm(dim=1) - 1) ** 2).mean().backward()
        return [p.grad for p in model.parameters()]

    for ours, theirs in zip(penalty_grads(lkt.LeakyReLU), penalty_grads(torch.nn.LeakyReLU)):
        assert torch_bits_equal(ours, theirs)


def test_gradcheck_and_gradgradcheck_in_float64():
    x = torch.randn(4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = (x + torch.sign(x) * 0.1).requires_grad_(True)  # no input within gradcheck's eps of 0
    for slope in (0.01, -0.5, 2.0):
        assert torch.autograd.gradcheck(lambda t: lkt.leaky_relu(t, slope), (x,))
        assert torch.autograd.gradgradcheck(lambda t: lkt.leaky_relu(t, slope), (x,))


@pytest.mark.parametrize(
    "make",
    [
        lambda z: z.conj().imag,  # the negative bit set
        lambda z: torch._neg_view(z.real),
        lambda z: z.conj().real,  # a conj view's real part: strided, no bit set
    ],
    ids=["conj_imag", "neg_view", "conj_real"],
)
def test_neg_bit_and_conj_views_equal_torch(tensor, make):
    parts = tensor((2, 30), torch.float32)
    g = tensor((30,), torch.float32)

    def run(function):
        z = torch.complex(parts[0], parts[1]).requires_grad_(True)
        y = function(make(z), 0.2)
        y.backward(g)
        return y, z.grad

    y, dz = run(lkt.leaky_relu)
    expected_y, expected_dz = run(F.leaky_relu)
    assert torch_bits_equal(y, expected_y)
    assert torch.equal(dz.view(torch.float32), expected_dz.view(torch.float32))


def test_a_real_tensors_conj_is_itself(tensor):
    x = tensor((20,))
    assert torch_bits_equal(lkt.leaky_relu(x.conj(), 0.2), F.leaky_relu(x, 0.2))


@pytest.mark.parametrize("slope", [1e39, -1e39, 3.4028236e38, 10**400])
def test_slopes_that_overflow_float32_fail_as_in_torch(tensor, slope):
    x = tensor((100,))
    with pytest.raises((RuntimeError, OverflowError)) as ours:
        lkt.leaky_relu(x, slope)
    with pytest.raises((RuntimeError, OverflowError)) as theirs:
        F.leaky_relu(x, slope)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_slopes_float64_holds_take_the_kernel(tensor):
    x = tensor((100,), torch.float64).requires_grad_(True)
    for slope in (1e39, 3.4028234663852886e38):
        y = lkt.leaky_relu(x, slope)
        assert took_kernel(y)
        assert torch_bits_equal(y, F.leaky_relu(x, slope))
    y = lkt.leaky_relu(x.float(), 3.4028234663852886e38)  # float32's largest value
    assert torch_bits_equal(y, F.leaky_relu(x.float(), 3.4028234663852886e38))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_other_dtypes_fall_back_to_torch(dtype):
    x = torch.linspace(-3, 3, 50, dtype=dtype, requires_grad=True)
    y = lkt.leaky_relu(x, 0.1)
    assert y.grad_fn.name() == F.leaky_relu(x, 0.1).grad_fn.name()
    assert torch.equal(y, F.leaky_relu(x, 0.1))


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("layout", [torch.strided, torch.jagged], ids=str)
def test_nested_tensors_go_to_torch(tensor, layout):
    # torch 2.13 computes the jagged layout and refuses the strided one.
    x = torch.nested.nested_tensor([tensor((3, 4)), tensor((5, 4))], layout=layout)
    try:
        theirs = F.leaky_relu(x, 0.1)
    except Exception as refusal:
        with pytest.raises(type(refusal)) as ours:
            lkt.leaky_relu(x, 0.1)
        assert str(ours.value) == str(refusal)
        return
    ours = lkt.leaky_relu(x, 0.1)
    assert ours.is_nested
    for a, b in zip(ours.unbind(), theirs.unbind()):
        assert torch_bits_equal(a, b)


@pytest.mark.parametrize("slope", [float("inf"), float("-inf"), float("nan")])
def test_slopes_the_kernels_do_not_take_go_to_torch(tensor, slope):
    x = tensor((100,))
    assert torch_bits_equal(lkt.leaky_relu(x, slope), F.leaky_relu(x, slope))


def test_integer_tensors_fail_as_in_torch():
    x = torch.arange(-3, 3)
    with pytest.raises(RuntimeError) as ours:
        lkt.leaky_relu(x)
    with pytest.raises(RuntimeError) as theirs:
        F.leaky_relu(x)
    assert str(ours.value) == str(theirs.value)


def test_no_grad_and_inputs_without_grad(tensor):
    x = tensor((100,))
    with torch.no_grad():
        assert torch_bits_equal(lkt.leaky_relu(x, 0.2), F.leaky_relu(x, 0.2))
    y = lkt.leaky_relu(x, 0.2)
    assert not y.requires_grad
    assert torch_bits_equal(y, F.leaky_relu(x, 0.2))


def test_the_kernel_follows_torchs_thread_count(tensor, monkeypatch):
    seen = []
    forward = lkt._np_forward_mask
    def recording(*args, num_threads, **kwargs):
        seen.append(num_threads)
        return forward(*args, num_threads=num_threads, **kwargs)

    monkeypatch.setattr(lkt, "_np_forward_mask", recording)
    x = tensor((100,))
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            lkt.leaky_relu(x)
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2]


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


def test_importing_without_torch_names_the_extra(tmp_path):
    # A child interpreter in which importing torch fails.
    import subprocess
    import sys

    (tmp_path / "torch.py").write_text("raise ImportError('no torch here')\n")
    code = "import leaky_kernel.torch"
    env = {"PYTHONPATH": f"{tmp_path}:{':'.join(sys.path)}"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode != 0
    assert 'ImportError: leaky_kernel.torch needs PyTorch; install it with: pip install "leaky-kernel[torch]"' in result.stderr
