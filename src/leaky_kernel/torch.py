"""leaky_kernel's Leaky ReLU for PyTorch: a drop-in for torch.nn.LeakyReLU and
torch.nn.functional.leaky_relu (needs the optional extra ``torch``).

    import leaky_kernel.torch as lkt
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), lkt.LeakyReLU(0.1), torch.nn.Linear(8, 1))

The kernels are registered as PyTorch operators (namespace ``leaky_kernel``)
with fake implementations, autograd (the out-of-place ones) and vmap rules,
so that torch.compile, torch.export and torch.func see them as they see
torch's own; torch.library.opcheck passes for each:

    leaky_kernel::leaky_relu(Tensor x, float negative_slope) -> Tensor
    leaky_kernel::leaky_relu_forward_mask(Tensor x, float negative_slope) -> (Tensor, Tensor)
    leaky_kernel::leaky_relu_backward_mask(Tensor grad_output, Tensor mask,
                                           float negative_slope, SymInt[] x_stride) -> Tensor
    leaky_kernel::leaky_relu_(Tensor(a!) x, float negative_slope) -> ()
    leaky_kernel::leaky_relu_forward_mask_(Tensor(a!) x, float negative_slope) -> Tensor

Under autograd, leaky_relu runs the forward that also returns the 1-bit sign
mask of x, and saves that mask for the backward in place of x. The mask's
bits follow x's elements in memory order (dimensions by decreasing stride),
which is why the backward takes x's strides. Outputs and gradients equal
torch's to the bit, with the strides torch would give them.

`leaky_relu` and `LeakyReLU` call the operators on CPU float32 and float64
tensors of at least KERNEL_MIN_NUMEL elements. Everything else (smaller
tensors, other devices and dtypes, subclasses, slopes the dtype cannot
hold, in place where torch must decide, in place under torch.compile) goes
to torch's own operator, errors included. In eager mode forward-mode AD
(torch.func.jvp, jacfwd, hessian, torch.autograd.forward_ad) works too.
"""
import inspect
import math
import numbers

import numpy as np

try:
    import torch
except ImportError as exc:
    raise ImportError(
        'leaky_kernel.torch needs PyTorch; install it with: pip install "leaky-kernel[torch]"'
    ) from exc
from numpy.lib.stride_tricks import as_strided

from . import leaky_relu as _np_leaky_relu
from . import leaky_relu_backward_mask as _np_backward_mask
from . import leaky_relu_forward_mask as _np_forward_mask
from ._rules import mask_nbytes

__all__ = ["leaky_relu", "LeakyReLU", "KERNEL_MIN_NUMEL"]

_KERNEL_DTYPES = (torch.float32, torch.float64)
_NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_F = torch.nn.functional

# Smaller tensors go to torch's operator. Between a model's layers the caches
# are cold and the bridge's fixed cost per forward and backward is a few
# hundred microseconds, more than torch's whole forward and backward at 2^17
# elements. At 2^20 (4 MiB of float32, common activations) the kernel's
# speed about pays for that cost in a training step, and the 1-bit mask is
# kept.
KERNEL_MIN_NUMEL = 1 << 20

_NAMESPACE = "leaky_kernel"
_library = torch.library.Library(_NAMESPACE, "FRAGMENT")
_library.define("leaky_relu(Tensor x, float negative_slope) -> Tensor")
_library.define("leaky_relu_forward_mask(Tensor x, float negative_slope) -> (Tensor, Tensor)")
_library.define(
    "leaky_relu_backward_mask(Tensor grad_output, Tensor mask, float negative_slope, "
    "SymInt[] x_stride) -> Tensor"
)
_ops = getattr(torch.ops, _NAMESPACE)


# Layouts ------------------------------------------------------------------


def _memory_order(shape, strides):
    """Dimensions from the largest stride to the smallest (stable): the order
    the kernels visit x's elements in, and so the order of the mask's bits."""
    return sorted(range(len(shape)), key=lambda d: -strides[d])


def _is_dense(shape, strides):
    """Whether a tensor of `shape` and `strides` covers its memory exactly,
    each element once, with no gaps (torch's non-overlapping and dense)."""
    expected = 1
    for d in reversed(_memory_order(shape, strides)):
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def _is_contiguous(shape, strides):
    """torch's is_contiguous for a tensor of `shape` and `strides`."""
    if 0 in shape:
        return True
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def _forward_strides(x):
    """The strides torch gives leaky_relu(x): asked of torch's own operator on
    a meta tensor (no memory, no computation)."""
    if x.is_contiguous():
        return None
    meta = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
    return torch.ops.aten.leaky_relu(meta, 0.0).stride()


def _backward_strides(grad_output, x_stride):
    """The strides torch gives leaky_relu_backward(grad_output, x), x having
    grad_output's shape and x_stride, asked of torch's operator as above."""
    shape, dtype = grad_output.shape, grad_output.dtype
    meta_x = torch.empty_strided(shape, x_stride, dtype=dtype, device="meta")
    meta_grad = torch.empty_strided(shape, grad_output.stride(), dtype=dtype, device="meta")
    return torch.ops.aten.leaky_relu_backward(meta_grad, meta_x, 0.0, False).stride()


def _new_result(shape, strides, dtype):
    """An uninitialised tensor of `shape` and (dense) `strides`, C order for
    None, and a NumPy view of it.

    Results are allocated by NumPy rather than torch on purpose: NumPy asks
    Linux for transparent huge pages on large arrays (madvise), torch's CPU
    allocator does not, and first touching fresh 4 KiB pages of a large
    result took longer than computing Leaky ReLU on it.
    """
    dtype = _NUMPY_DTYPES[dtype]
    if strides is None:
        array = np.empty(shape, dtype)
    else:
        buffer = np.empty(math.prod(shape), dtype)
        array = as_strided(buffer, shape, [s * dtype.itemsize for s in strides])
    return torch.from_numpy(array), array


def _numpy(tensor):
    """A NumPy view of a CPU tensor's memory (a copy for a neg-bit view)."""
    return tensor.detach().resolve_neg().numpy()


def _in_order(array, strides):
    """`array` with its dimensions in the memory order of `strides`."""
    return array.transpose(_memory_order(array.shape, strides))


# The operators' CPU kernels: leaky_kernel's public NumPy functions on views
# of the tensors' memory, on torch's thread count (torch.set_num_threads).


def _leaky_relu_cpu(x, negative_slope):
    strides = _forward_strides(x)
    result, out = _new_result(x.shape, strides, x.dtype)
    if x.numel():
        _np_leaky_relu(_numpy(x), negative_slope, out=out, num_threads=torch.get_num_threads())
    return result


def _forward_mask_cpu(x, negative_slope):
    threads = torch.get_num_threads()
    if x.is_contiguous() and x.numel():
        # The common case, kept short: the kernel allocates a C-ordered
        # result, as torch's is for a contiguous input.
        y, mask = _np_forward_mask(_numpy(x).reshape(-1), negative_slope, num_threads=threads)
        return torch.from_numpy(y.reshape(x.shape)), torch.from_numpy(mask)
    result, out = _new_result(x.shape, _forward_strides(x), x.dtype)
    if not x.numel():
        return result, torch.empty(0, dtype=torch.uint8)
    _, mask = _np_forward_mask(
        _in_order(_numpy(x), x.stride()), negative_slope,
        out=_in_order(out, x.stride()), num_threads=threads,
    )
    return result, torch.from_numpy(mask)


def _backward_mask_cpu(grad_output, mask, negative_slope, x_stride):
    threads = torch.get_num_threads()
    bits = mask.detach().contiguous().numpy()
    g = _numpy(grad_output)
    if _is_contiguous(grad_output.shape, x_stride) and grad_output.is_contiguous() and bits.size:
        # The common case, kept short as the forward's; torch's result is
        # C-ordered here too.
        grad = _np_backward_mask(g.reshape(-1), bits, negative_slope, num_threads=threads)
        return torch.from_numpy(grad.reshape(grad_output.shape))
    result, out = _new_result(
        grad_output.shape, _backward_strides(grad_output, x_stride), grad_output.dtype
    )
    if grad_output.numel():
        _np_backward_mask(
            _in_order(g, x_stride), bits, negative_slope,
            out=_in_order(out, x_stride), num_threads=threads,
        )
    return result


# torch.library.custom_op, unlike Library.define, adds the version counter's
# bump that an in-place operator owes autograd.
@torch.library.custom_op(f"{_NAMESPACE}::leaky_relu_", mutates_args={"x"}, device_types="cpu")
def _leaky_relu_inplace_cpu(x: torch.Tensor, negative_slope: float) -> None:
    if not _is_dense(x.shape, x.stride()):
        # Gaps are written through torch's copy_, which also refuses
        # tensors whose elements overlap, as torch's in-place operators do.
        x.copy_(_leaky_relu_cpu(x, negative_slope))
        return
    if x.numel():
        array = _numpy(x)
        _np_leaky_relu(array, negative_slope, out=array, num_threads=torch.get_num_threads())


@torch.library.custom_op(
    f"{_NAMESPACE}::leaky_relu_forward_mask_", mutates_args={"x"}, device_types="cpu"
)
def _forward_mask_inplace_cpu(x: torch.Tensor, negative_slope: float) -> torch.Tensor:
    """leaky_relu_forward_mask writing its result into x (dense: the
    bridge sends other tensors to torch); returns the mask."""
    if not x.numel():
        return torch.empty(0, dtype=torch.uint8)
    array = _in_order(_numpy(x), x.stride())
    _, mask = _np_forward_mask(
        array, negative_slope, out=array, num_threads=torch.get_num_threads()
    )
    return torch.from_numpy(mask)


@_forward_mask_inplace_cpu.register_fake
def _forward_mask_inplace_fake(x, negative_slope):
    return x.new_empty(mask_nbytes(x.numel()), dtype=torch.uint8)


# Library.impl rather than torch.library.register_kernel, whose wrapper
# (keeping Dynamo out of the kernel, which Dynamo never enters: it traces
# the fake implementations) costs microseconds on every call.
_library.impl("leaky_relu", _leaky_relu_cpu, "CPU")
_library.impl("leaky_relu_forward_mask", _forward_mask_cpu, "CPU")
_library.impl("leaky_relu_backward_mask", _backward_mask_cpu, "CPU")


# Fake implementations: shapes, dtypes and torch's strides, from torch's own
# operators on the fake tensors.


@torch.library.register_fake(f"{_NAMESPACE}::leaky_relu", lib=_library)
def _leaky_relu_fake(x, negative_slope):
    return torch.ops.aten.leaky_relu(x, 0.0)


@torch.library.register_fake(f"{_NAMESPACE}::leaky_relu_forward_mask", lib=_library)
def _forward_mask_fake(x, negative_slope):
    return torch.ops.aten.leaky_relu(x, 0.0), x.new_empty(
        mask_nbytes(x.numel()), dtype=torch.uint8
    )


@torch.library.register_fake(f"{_NAMESPACE}::leaky_relu_backward_mask", lib=_library)
def _backward_mask_fake(grad_output, mask, negative_slope, x_stride):
    x = grad_output.new_empty_strided(grad_output.shape, x_stride)
    return torch.ops.aten.leaky_relu_backward(grad_output, x, 0.0, False)


@_leaky_relu_inplace_cpu.register_fake
def _leaky_relu_inplace_fake(x, negative_slope):
    return None


# Autograd. The backward of a select is the same select of the incoming
# gradient, from the mask: linear in that gradient, so it is its own
# derivative, and torch's forward-mode tangent where(x > 0, t, slope * t)
# is the backward kernel applied to the tangent.


def _backward_of_forward_mask(ctx, grad_output, _grad_mask):
    (mask,) = ctx.saved_tensors
    return _ops.leaky_relu_backward_mask(grad_output, mask, ctx.negative_slope, ctx.x_stride), None


def _setup_forward_mask(ctx, inputs, output):
    x, ctx.negative_slope = inputs
    ctx.x_stride = x.stride()
    ctx.save_for_backward(output[1])


def _backward_of_backward_mask(ctx, grad):
    (mask,) = ctx.saved_tensors
    return _ops.leaky_relu_backward_mask(grad, mask, ctx.negative_slope, ctx.x_stride), None, None, None


def _setup_backward_mask(ctx, inputs, output):
    _, mask, ctx.negative_slope, ctx.x_stride = inputs
    ctx.save_for_backward(mask)


def _setup_leaky_relu(ctx, inputs, output):
    # The operator's own result has no mask: it is made here, with one more
    # pass over x. The bridge differentiates through leaky_relu_forward_mask,
    # which makes both in one pass.
    x, ctx.negative_slope = inputs
    ctx.x_stride = x.stride()
    ctx.save_for_backward(_ops.leaky_relu_forward_mask(x, ctx.negative_slope)[1])


def _backward_of_leaky_relu(ctx, grad_output):
    return _backward_of_forward_mask(ctx, grad_output, None)[0], None


torch.library.register_autograd(
    f"{_NAMESPACE}::leaky_relu", _backward_of_leaky_relu,
    setup_context=_setup_leaky_relu, lib=_library,
)
torch.library.register_autograd(
    f"{_NAMESPACE}::leaky_relu_forward_mask", _backward_of_forward_mask,
    setup_context=_setup_forward_mask, lib=_library,
)
torch.library.register_autograd(
    f"{_NAMESPACE}::leaky_relu_backward_mask", _backward_of_backward_mask,
    setup_context=_setup_backward_mask, lib=_library,
)


class _LeakyReLU(torch.autograd.Function):
    """The bridge under autograd, reverse and forward mode.

    register_autograd gives an operator a backward but no forward-mode
    formula (torch 2.13 has no register_jvp), so in eager mode the bridge
    differentiates through this Function, the way PyTorch documents custom
    jvp rules; its forward, backward and jvp call the operators. It runs
    leaky_relu_forward_mask and saves the mask. It also outputs an empty
    anchor: a gradient computed with create_graph flows back through it to
    the input with derivative zero, as the derivative of torch's
    leaky_relu_backward with respect to the input is, without keeping the
    input's memory alive.
    """

    @staticmethod
    def forward(x, negative_slope):
        y, mask = _ops.leaky_relu_forward_mask(x, negative_slope)
        return y, mask, x.new_empty(0)

    @staticmethod
    def vmap(info, in_dims, x, negative_slope):
        # The operator's own vmap rule. (A generated rule would also wrap
        # the backward, and torch 2.13's wrapper fails on gradients that
        # are None, which this Function's backward receives.)
        (y, masks), (y_dim, masks_dim) = _forward_mask_vmap(info, in_dims, x, negative_slope)
        return (y, masks, x.new_empty(0)), (y_dim, masks_dim, None)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, ctx.negative_slope = inputs
        _, mask, anchor = output
        ctx.shape, ctx.x_stride = x.shape, x.stride()
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(mask)
        ctx.save_for_backward(mask, anchor)
        ctx.save_for_forward(mask)

    @staticmethod
    def backward(ctx, grad_output, _grad_mask, grad_anchor):
        mask, anchor = ctx.saved_tensors
        if grad_output is None:
            # Only the anchor's gradient arrives: the input's is zero.
            if grad_anchor is None:
                return None, None
            strides = ctx.x_stride if _is_dense(ctx.shape, ctx.x_stride) else None
            zeros = torch.zeros(ctx.shape, dtype=grad_anchor.dtype)
            return zeros if strides is None else zeros.as_strided(ctx.shape, strides), None
        args = (mask, ctx.negative_slope, ctx.x_stride)
        if torch.is_grad_enabled():  # create_graph, or torch.func: the gradient is differentiated
            return _LeakyReLUGrad.apply(grad_output, anchor, *args), None
        return _ops.leaky_relu_backward_mask(grad_output, *args), None

    @staticmethod
    def jvp(ctx, x_tangent, _slope_tangent):
        (mask,) = ctx.saved_tensors
        tangent = _ops.leaky_relu_backward_mask(x_tangent, mask, ctx.negative_slope, ctx.x_stride)
        # The anchor's tangent is given, empty: with None there, torch 2.13
        # set this tangent on the mask and failed an internal assert.
        return tangent, None, x_tangent.new_zeros(0)


class _LeakyReLUInplace(_LeakyReLU):
    """The bridge in place under autograd: the result is written into x,
    marked dirty, and the mask of x before the write is saved. Autograd's
    refusals (leaves, views) come only after a Function's forward, so the
    bridge sends those cases to torch before calling it."""

    @staticmethod
    def forward(x, negative_slope):
        mask = _ops.leaky_relu_forward_mask_(x, negative_slope)
        return x, mask, x.new_empty(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _LeakyReLU.setup_context(ctx, inputs, output)
        ctx.mark_dirty(inputs[0])

    @staticmethod
    def jvp(ctx, x_tangent, _slope_tangent):
        (mask,) = ctx.saved_tensors
        x_tangent.copy_(
            _ops.leaky_relu_backward_mask(x_tangent, mask, ctx.negative_slope, ctx.x_stride)
        )
        return x_tangent, None, x_tangent.new_zeros(0)

    @staticmethod
    def vmap(info, in_dims, x, negative_slope):
        (y, masks), (y_dim, masks_dim) = _forward_mask_vmap(info, in_dims, x, negative_slope)
        x.copy_(y)  # y is batched along x's dimension
        return (x, masks, x.new_empty(0)), (y_dim, masks_dim, None)


class _LeakyReLUGrad(torch.autograd.Function):
    """The backward, differentiable: linear in grad_output, so its
    derivative and its tangent are the same select, and zero with respect to
    the forward's input (through the anchor)."""

    @staticmethod
    def forward(grad_output, anchor, mask, negative_slope, x_stride):
        return _ops.leaky_relu_backward_mask(grad_output, mask, negative_slope, x_stride)

    @staticmethod
    def vmap(info, in_dims, grad_output, anchor, mask, negative_slope, x_stride):
        dims = (in_dims[0], in_dims[2])
        return _backward_mask_vmap(info, dims, grad_output, mask, negative_slope, x_stride)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, anchor, mask, ctx.negative_slope, ctx.x_stride = inputs
        ctx.save_for_backward(anchor, mask)
        ctx.save_for_forward(mask)

    @staticmethod
    def backward(ctx, grad):
        anchor, mask = ctx.saved_tensors
        grad_grad_output = grad_anchor = None
        if ctx.needs_input_grad[0]:
            grad_grad_output = _LeakyReLUGrad.apply(
                grad, anchor, mask, ctx.negative_slope, ctx.x_stride
            )
        if ctx.needs_input_grad[1]:
            grad_anchor = torch.zeros_like(anchor)
        return grad_grad_output, grad_anchor, None, None, None

    @staticmethod
    def jvp(ctx, grad_output_tangent, _anchor_tangent, _mask_tangent, _slope, _stride):
        (mask,) = ctx.saved_tensors
        return _ops.leaky_relu_backward_mask(
            grad_output_tangent, mask, ctx.negative_slope, ctx.x_stride
        )


# Function.apply binds its arguments to forward's signature on every call;
# inspect.signature returns a __signature__ at once instead of building it.
for _function in (_LeakyReLU, _LeakyReLUInplace, _LeakyReLUGrad):
    _function.forward.__signature__ = inspect.signature(_function.forward)


# vmap rules. A batched tensor's mask is one mask per example (each example's
# bits in its own memory order, padded to whole bytes), so that the backward
# reads each example's bits as it would unbatched.


def _leaky_relu_vmap(info, in_dims, x, negative_slope):
    return _ops.leaky_relu(x, negative_slope), in_dims[0]


@_leaky_relu_inplace_cpu.register_vmap
def _leaky_relu_inplace_vmap(info, in_dims, x, negative_slope):
    _ops.leaky_relu_(x, negative_slope)
    return None, None


def _forward_mask_vmap(info, in_dims, x, negative_slope):
    batch = x.movedim(in_dims[0], 0)
    shape, strides = batch.shape[1:], batch.stride()[1:]
    order = [d + 1 for d in _memory_order(shape, strides)]
    examples = batch.permute(0, *order).reshape(batch.shape[0], -1)
    size = examples.shape[1]
    padded = _F.pad(examples, (0, 8 * mask_nbytes(size) - size)).contiguous()
    _, masks = _ops.leaky_relu_forward_mask(padded.view(-1), negative_slope)
    return (
        (_ops.leaky_relu(x, negative_slope), masks.view(batch.shape[0], -1)),
        (in_dims[0], 0),
    )


def _backward_mask_vmap(info, in_dims, grad_output, mask, negative_slope, x_stride):
    grad_dim, mask_dim = in_dims[0], in_dims[1]
    if grad_dim is None:
        grad_output = grad_output.unsqueeze(0)
    else:
        grad_output = grad_output.movedim(grad_dim, 0)
    shape = grad_output.shape[1:]
    if mask_dim is None:
        positive = _positive(mask.unsqueeze(0), shape, x_stride)
    else:
        positive = _positive(mask.movedim(mask_dim, 0), shape, x_stride)
    grad = torch.where(positive, grad_output, grad_output * negative_slope)
    return grad, 0


for _name, _rule in (
    ("leaky_relu", _leaky_relu_vmap),
    ("leaky_relu_forward_mask", _forward_mask_vmap),
    ("leaky_relu_backward_mask", _backward_mask_vmap),
):
    torch.library.register_vmap(f"{_NAMESPACE}::{_name}", _rule, lib=_library)


def _positive(masks, shape, x_stride):
    """Masks (one a row) as bool tensors of the examples' `shape`, x > 0."""
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)
    bits = (masks.unsqueeze(-1) & weights).ne(0).flatten(1)[:, : math.prod(shape)]
    order = _memory_order(shape, x_stride)
    in_order = bits.reshape(masks.shape[0], *[shape[d] for d in order])
    return in_order.permute(0, *[order.index(d) + 1 for d in range(len(shape))])


# The bridge --------------------------------------------------------------


def _kernel_slope(negative_slope, dtype):
    """The slope as the kernels take it, or None where torch's operator must
    decide: slopes that are not finite real numbers, or above float32's
    largest value for float32, which torch refuses with its own error (its
    rule, so that the bridge raises exactly where torch does)."""
    if not isinstance(negative_slope, (numbers.Real, torch.SymFloat)):
        return None
    try:
        slope = float(negative_slope)
    except OverflowError:
        return None
    # Comparisons rather than math.isfinite: under torch.compile a slope can
    # be a symbolic float, whose comparisons Dynamo turns into guards.
    limit = _FLOAT32_MAX if dtype == torch.float32 else math.inf
    if not -limit <= slope <= limit or abs(slope) == math.inf:  # NaN fails both sides
        return None
    return slope


def _kernel_takes(input):
    """Whether the operators take this tensor (else torch's operator does)."""
    return (
        input.is_cpu
        and input.dtype in _KERNEL_DTYPES
        and input.layout == torch.strided
        and not input.is_nested
    )


def _may_be_differentiated(input):
    """Whether autograd, torch.func or forward-mode AD may follow this call.
    Grad mode is enough: under torch.func.jvp the input neither requires
    grad nor shows its tangent."""
    if torch.is_grad_enabled():
        return True
    return torch.autograd.forward_ad.unpack_dual(input).tangent is not None


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """torch.nn.functional.leaky_relu, computed by leaky_kernel where it can be."""
    # Subclasses keep their own dispatch. Most calls in a model are below the
    # line, and go on before the other checks: between a model's layers the
    # caches are cold, and each check costs microseconds.
    if input.numel() < max(KERNEL_MIN_NUMEL, 1) or (
        type(input) is not torch.Tensor and not torch.compiler.is_exporting()  # export's are fake
    ):
        return _F.leaky_relu(input, negative_slope, inplace)
    slope = _kernel_slope(negative_slope, input.dtype)
    if slope is None or not _kernel_takes(input):
        return _F.leaky_relu(input, negative_slope, inplace)
    if not inplace:
        if not _may_be_differentiated(input):
            return _ops.leaky_relu(input, slope)
        if torch.compiler.is_compiling():
            # Dynamo does not trace a Function with a jvp; the operator's
            # registered autograd saves the same mask.
            return _ops.leaky_relu_forward_mask(input, slope)[0]
        return _LeakyReLU.apply(input, slope)[0]
    if torch.compiler.is_compiling() or (
        input.is_inference() and not torch.is_inference_mode_enabled()  # torch refuses, its way
    ):
        # Compiled, torch's in-place operator is functionalized and fused
        # (Dynamo traces neither is_inference nor a Function with a jvp).
        return _F.leaky_relu(input, negative_slope, inplace)
    if not _may_be_differentiated(input):
        _ops.leaky_relu_(input, slope)
    elif (
        (input.requires_grad and input.is_leaf)  # refused by autograd
        or input._base is not None  # views: refused, or rebased by torch's operator
        or not _is_dense(input.shape, input.stride())
    ):
        # torch's operator makes autograd's checks before it writes.
        return _F.leaky_relu(input, negative_slope, inplace)
    else:
        _LeakyReLUInplace.apply(input, slope)
    return input


class LeakyReLU(torch.nn.Module):
    """torch.nn.LeakyReLU, computed by leaky_kernel where it can be.

    Not for TorchScript (in maintenance in PyTorch): torch.jit.script
    refuses it with an error that points to torch.compile; torch.jit.trace
    and torch.export record the operators.
    """

    __constants__ = ["inplace", "negative_slope"]

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace_str}"

    def __prepare_scriptable__(self):
        raise RuntimeError(
            "leaky_kernel.torch.LeakyReLU does not support TorchScript (torch.jit.script): "
            "use torch.compile, torch.export or torch.jit.trace instead"
        )
