"""leaky_kernel's Leaky ReLU for PyTorch: a drop-in for torch.nn.LeakyReLU and
torch.nn.functional.leaky_relu (needs the optional extra ``torch``).

    import leaky_kernel.torch as lkt
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), lkt.LeakyReLU(0.1), torch.nn.Linear(8, 1))

On CPU float32 and float64 tensors of at least KERNEL_MIN_NUMEL elements the
forward runs leaky_kernel's fused kernel on zero-copy NumPy views and saves
the 1-bit sign mask of the input for the backward, in place of the input.
Outputs and gradients equal torch's to the bit, with the strides torch would
give them, and the backward is differentiable as torch's is. Everything else
(smaller tensors, other devices and dtypes, neg-bit views, slopes the dtype
cannot hold, in place where autograd could refuse it, batched tensors under
torch.func.vmap) goes to torch's own operator, errors included.
"""
import math

import numpy as np
import torch
from numpy.lib.stride_tricks import as_strided
from torch._C._functorch import is_functorch_wrapped_tensor

from ._mask import leaky_relu_backward_mask, leaky_relu_forward_mask
from ._validation import check_slope

__all__ = ["leaky_relu", "LeakyReLU", "KERNEL_MIN_NUMEL"]

_KERNEL_DTYPES = (torch.float32, torch.float64)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

# Smaller tensors go to torch's operator. Between a model's layers the caches
# are cold and the bridge's fixed cost per forward and backward is a few
# hundred microseconds, more than torch's whole forward and backward at 2^17
# elements. At 2^20 (4 MiB of float32, common activations) the kernel's
# speed about pays for that cost in a training step, and the 1-bit mask is
# kept (bench/NOTES.md, sections 24 and 28).
KERNEL_MIN_NUMEL = 1 << 20


class _Layout:
    """Where a tensor's elements lie: its shape and strides, and the order
    of its dimensions from outermost to innermost in memory (the order the
    kernel visits them, and so the order of the mask's bits)."""

    __slots__ = ("shape", "strides", "contiguous", "channels_last", "order")

    def __init__(self, tensor):
        self.shape = tuple(tensor.shape)
        self.strides = tensor.stride()
        self.contiguous = tensor.is_contiguous()
        self.channels_last = tensor.dim() == 4 and tensor.is_contiguous(
            memory_format=torch.channels_last
        )
        self.order = None if self.contiguous else _memory_order(self.shape, self.strides)


def _memory_order(shape, strides):
    """Dimensions from the largest stride to the smallest (stable)."""
    return sorted(range(len(shape)), key=lambda d: -strides[d])


def _is_dense(shape, strides):
    """torch's is_non_overlapping_and_dense, which Python does not expose."""
    expected = 1
    for d in reversed(_memory_order(shape, strides)):
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def _result_strides(shape, operands):
    """The strides torch's TensorIterator gives the new result of an
    elementwise op over operands of one shape (a list of _Layout, in the op's
    argument order): its fast set-up for operands that are all contiguous,
    all channels_last, or dense with equal strides, else its reordering of
    dimensions by the operands' strides."""
    if all(op.contiguous for op in operands):
        return _strides_in_order(shape, range(len(shape)))
    if all(op.channels_last for op in operands):
        return _strides_in_order(shape, (0, 2, 3, 1))
    if all(_is_dense(shape, op.strides) for op in operands) and all(
        op.strides == operands[-1].strides for op in operands
    ):
        return operands[-1].strides
    ndim = len(shape)
    perm = list(range(ndim - 1, -1, -1))  # fastest dimension first, as TensorIterator's

    def should_swap(dim0, dim1):
        for op in operands:
            stride0, stride1 = op.strides[dim0], op.strides[dim1]
            if stride0 == 0 or stride1 == 0:
                continue
            if stride0 != stride1:
                return 1 if stride0 > stride1 else -1
            if shape[dim0] > shape[dim1]:
                return 1
        return 0

    for i in range(1, ndim):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    return _strides_in_order(shape, perm[::-1])


def _strides_in_order(shape, order):
    """Dense strides that lay out dimensions `order` from outermost to innermost."""
    strides = [0] * len(shape)
    step = 1
    for d in reversed(order):
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def _new_result(shape, strides, dtype):
    """An uninitialised tensor of `shape` and `strides`, and a NumPy view of it.

    Results are allocated by NumPy rather than torch on purpose: NumPy asks
    Linux for transparent huge pages on large arrays (madvise), torch's CPU
    allocator does not, and first touching 64 MiB of fresh 4 KiB pages took
    longer than computing Leaky ReLU on it.
    """
    if strides == _strides_in_order(shape, range(len(shape))):
        array = np.empty(shape, dtype)
    else:
        buffer = np.empty(math.prod(shape), dtype)
        array = as_strided(buffer, shape, [s * buffer.itemsize for s in strides])
    return torch.from_numpy(array), array


def _zeros(layout, dtype):
    """Zeros of the input's shape, with its strides where they are dense."""
    strides = layout.strides if _is_dense(layout.shape, layout.strides) else None
    if strides is None:
        return torch.zeros(layout.shape, dtype=dtype)
    return torch.empty_strided(layout.shape, strides, dtype=dtype).zero_()


def _in_order(array, layout):
    """`array` with its dimensions in `layout`'s memory order (C order for
    the kernel: the mask's bits follow that order)."""
    return array if layout.order is None else array.transpose(layout.order)


class _LeakyReLU(torch.autograd.Function):
    """Leaky ReLU whose backward reads the input's sign mask, not the input.

    Outputs (result, mask, anchor). The anchor, an empty tensor, ties the
    gradient to the input in the graph without keeping the input's memory
    alive: the gradient's own derivative flows back through it to this
    Function, whose derivative with respect to the input through the anchor
    is zero, as torch's leaky_relu_backward's is. Mask and anchor are made
    here, in the Function's one call, because between a model's layers the
    caches are cold and each extra operator costs tens of microseconds.
    """

    @staticmethod
    def forward(input, negative_slope, inplace):
        x = input.detach().numpy()  # a view: the kernel reads the tensor's memory
        threads = torch.get_num_threads()
        anchor = torch.empty(0, dtype=input.dtype)
        if input.is_contiguous() and input.dim() and not inplace:  # 0-d: NumPy gives a scalar
            # The common case, kept short. The kernel allocates the result,
            # C-ordered as torch's is for a contiguous input.
            y, mask = leaky_relu_forward_mask(x, negative_slope, num_threads=threads)
            return torch.from_numpy(y), torch.from_numpy(mask), anchor
        layout = _Layout(input)
        if inplace:
            output, y = input, x
        else:
            output, y = _new_result(layout.shape, _result_strides(layout.shape, [layout]), x.dtype)
        _, mask = leaky_relu_forward_mask(
            _in_order(x, layout), negative_slope, out=_in_order(y, layout), num_threads=threads
        )
        return output, torch.from_numpy(mask), anchor

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, negative_slope, inplace = inputs
        result, mask, anchor = output
        ctx.negative_slope = negative_slope
        ctx.set_materialize_grads(False)
        if inplace:
            ctx.mark_dirty(input)
        if mask is None:  # computed by torch's operator (vmap): saved as torch saves
            ctx.layout, ctx.self_is_result = None, inplace
            ctx.save_for_backward(result if inplace else input)
            return
        # The mask, uint8, is never differentiable: autograd knows it by its dtype.
        ctx.layout = _Layout(input)
        ctx.save_for_backward(anchor, mask)

    @staticmethod
    def backward(ctx, grad_output, _, grad_anchor):
        if ctx.layout is None:
            if grad_output is None:
                return None, None, None
            (x,) = ctx.saved_tensors
            grad = torch.ops.aten.leaky_relu_backward(
                grad_output, x, ctx.negative_slope, ctx.self_is_result
            )
            return grad, None, None
        if grad_output is None:
            # Only the anchor's gradient, zero, arrives (a gradient's own
            # derivative with respect to the input): zero, laid out as torch
            # lays out that of its leaky_relu_backward.
            if grad_anchor is None:
                return None, None, None
            return _zeros(ctx.layout, grad_anchor.dtype), None, None
        anchor, mask = ctx.saved_tensors
        args = (grad_output, anchor, mask, ctx.negative_slope, ctx.layout)
        if torch.is_grad_enabled() or not _outside_torch_func(grad_output):
            return _apply(_LeakyReLUGrad, *args), None, None
        # A plain backward (no create_graph): the Function would record
        # nothing, and going through it costs time.
        return _LeakyReLUGrad.forward(*args), None, None

    @staticmethod
    def vmap(info, in_dims, input, negative_slope, inplace):
        # A batched input is computed by torch's operator, whose result and
        # saved tensor are batched as torch batches them.
        result = torch.nn.functional.leaky_relu(input, negative_slope, inplace)
        return (result, None, None), (in_dims[0], None, None)


class _LeakyReLUGrad(torch.autograd.Function):
    """torch's leaky_relu_backward from the mask: grad_output where the
    forward's input was > 0, else negative_slope * grad_output. Linear in
    grad_output, so its own gradient is the same select; zero with respect
    to the input (through the anchor)."""

    @staticmethod
    def forward(grad_output, anchor, mask, negative_slope, layout):
        g = grad_output.detach().resolve_neg().numpy()
        threads = torch.get_num_threads()
        if layout.contiguous and layout.shape and grad_output.is_contiguous():
            # The common case, kept short as the forward's; torch's result
            # is C-ordered here too.
            return torch.from_numpy(
                leaky_relu_backward_mask(g, mask.numpy(), negative_slope, num_threads=threads)
            )
        # torch's leaky_relu_backward builds its iterator over (self, grad_output).
        strides = _result_strides(layout.shape, [layout, _Layout(grad_output)])
        grad, result = _new_result(layout.shape, strides, g.dtype)
        leaky_relu_backward_mask(
            _in_order(g, layout), mask.numpy(), negative_slope,
            out=_in_order(result, layout), num_threads=threads,
        )
        return grad

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, anchor, mask, negative_slope, layout = inputs
        ctx.negative_slope, ctx.layout = negative_slope, layout
        ctx.save_for_backward(anchor, mask)

    @staticmethod
    def backward(ctx, grad):
        anchor, mask = ctx.saved_tensors
        grad_grad_output = grad_anchor = None
        if ctx.needs_input_grad[0]:
            grad_grad_output = _apply(
                _LeakyReLUGrad, grad, anchor, mask, ctx.negative_slope, ctx.layout
            )
        if ctx.needs_input_grad[1]:
            grad_anchor = torch.zeros_like(anchor)
        return grad_grad_output, grad_anchor, None, None, None

    @staticmethod
    def vmap(info, in_dims, grad_output, anchor, mask, negative_slope, layout):
        # Under vmap (torch.func.jacrev, vmap of a vjp) grad_output is batched
        # and the mask is the forward's, unbatched: select with torch's
        # operators, broadcasting the mask over the batch.
        positive = _unpack(mask, layout)
        if in_dims[0] is not None:
            grad_output = grad_output.movedim(in_dims[0], 0)
        grad = torch.where(positive, grad_output, grad_output * negative_slope)
        return grad, 0 if in_dims[0] is not None else None


def _unpack(mask, layout):
    """The mask's bits as a bool tensor of the forward input's shape."""
    bits = mask.unsqueeze(-1).bitwise_right_shift(torch.arange(8, dtype=torch.uint8)) & 1
    size = math.prod(layout.shape)
    if layout.order is None:
        return bits.reshape(-1)[:size].reshape(layout.shape).bool()
    in_order = bits.reshape(-1)[:size].reshape([layout.shape[d] for d in layout.order])
    return in_order.permute(np.argsort(layout.order).tolist()).bool()


def _kernel_slope(negative_slope, dtype):
    """The slope as the kernels take it, or None where torch's operator must
    decide: slopes that are not finite, or above float32's largest value,
    which torch refuses with its own error (its rule, not the package's
    round-to-inf one, so that the bridge raises exactly where torch does)."""
    try:
        slope = check_slope(negative_slope, None)
    except (TypeError, ValueError):
        return None
    if dtype == torch.float32 and abs(slope) > _FLOAT32_MAX:
        return None
    return slope


def _runs_on_kernel(input, inplace):
    """Whether leaky_kernel's kernel takes this call (else torch's operator
    does), for a torch.Tensor (not a subclass) of at least KERNEL_MIN_NUMEL
    elements, and at least one."""
    if not (
        input.is_cpu
        and input.dtype in _KERNEL_DTYPES
        and input.layout == torch.strided
        and not input.is_nested
        and not input.is_neg()  # NumPy cannot view those
    ):
        return False
    if not inplace:
        return True
    # In place, torch's checks must come before any write: autograd's
    # refusals (leaves and views that require grad, views it cannot rebase,
    # inference tensors) happen only after the Function's forward, so those
    # cases go to torch. Tensors whose elements overlap or leave gaps go to
    # torch too, which refuses or handles them as it does.
    if torch.is_grad_enabled() and (input._is_view() or (input.requires_grad and input.is_leaf)):
        return False
    if input.is_inference() and not torch.is_inference_mode_enabled():
        return False
    return _is_dense(input.shape, input.stride())


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """torch.nn.functional.leaky_relu, computed by leaky_kernel where it can be."""
    # Subclasses keep their own dispatch. Most calls in a model are below the
    # line, and go on before the other checks: between a model's layers the
    # caches are cold, and each check costs microseconds.
    if type(input) is not torch.Tensor or input.numel() < max(KERNEL_MIN_NUMEL, 1):
        return torch.nn.functional.leaky_relu(input, negative_slope, inplace)
    slope = _kernel_slope(negative_slope, input.dtype)
    if slope is None or not _runs_on_kernel(input, inplace):
        return torch.nn.functional.leaky_relu(input, negative_slope, inplace)
    output, _, _ = _apply(_LeakyReLU, input, slope, bool(inplace))
    # Under no_grad the Function returns a new tensor object even for a dirty input.
    return input if inplace else output


def _apply(function, tensor, *args):
    """function.apply(tensor, *args), past Function.apply's Python preamble
    when no torch.func transform is active and `tensor` is no torch.func
    wrapper. The preamble binds default arguments with inspect.signature
    (these Functions have none) and unwraps dead torch.func wrappers, and it
    took longer than the kernel on small tensors."""
    if _outside_torch_func(tensor):
        return super(torch.autograd.Function, function).apply(tensor, *args)
    return function.apply(tensor, *args)


def _outside_torch_func(tensor):
    return not (
        torch._C._are_functorch_transforms_active() or is_functorch_wrapped_tensor(tensor)
    )


class LeakyReLU(torch.nn.Module):
    """torch.nn.LeakyReLU, computed by leaky_kernel where it can be."""

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
