"""leaky_kernel's Leaky ReLU for PyTorch: a drop-in for torch.nn.LeakyReLU and
torch.nn.functional.leaky_relu (needs the optional extra ``torch``).

    import leaky_kernel.torch as lkt
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), lkt.LeakyReLU(0.1), torch.nn.Linear(8, 1))

On CPU float32 and float64 tensors the forward runs leaky_kernel's fused
kernel on a zero-copy NumPy view and saves the 1-bit sign mask of the input
for the backward, in place of the input. Outputs and gradients equal
torch's to the bit. Anything else (other devices and dtypes, in place on a
non-contiguous tensor, slopes that are not finite) goes to torch's own
operator, errors included.
"""
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ._mask import leaky_relu_backward_mask, leaky_relu_forward_mask
from ._validation import check_slope

__all__ = ["leaky_relu", "LeakyReLU"]

_KERNEL_DTYPES = (torch.float32, torch.float64)


class _LeakyReLUFunction(torch.autograd.Function):
    """Leaky ReLU whose backward reads the input's sign mask, not the input."""

    @staticmethod
    def forward(ctx, input, negative_slope, inplace):
        x = input.detach().numpy()  # a view: the kernel reads the tensor's memory
        if inplace:
            _, mask = leaky_relu_forward_mask(x, negative_slope, out=x)
            ctx.mark_dirty(input)
            output = input
        else:
            y, mask = leaky_relu_forward_mask(x, negative_slope)
            output = _tensor(y)
        ctx.save_for_backward(torch.from_numpy(mask))
        ctx.negative_slope = negative_slope
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        grad = leaky_relu_backward_mask(
            grad_output.detach().numpy(), mask.numpy(), ctx.negative_slope
        )
        return _tensor(grad), None, None


def _tensor(result):
    """A NumPy result as a tensor sharing its memory.

    Results are allocated by NumPy rather than torch on purpose: NumPy asks
    Linux for transparent huge pages on large arrays (madvise), torch's CPU
    allocator does not, and first touching 64 MiB of fresh 4 KiB pages took
    longer here than computing Leaky ReLU on it.
    """
    return torch.from_numpy(np.asarray(result))  # 0-d results come as NumPy scalars


def _runs_on_kernel(input, inplace):
    """Whether leaky_kernel's kernel takes this call (else torch's operator does)."""
    return (
        type(input) is torch.Tensor  # subclasses keep their own dispatch
        and input.device.type == "cpu"
        and input.dtype in _KERNEL_DTYPES
        and input.layout == torch.strided
        # torch refuses to write in place into tensors whose elements share
        # memory (expanded ones); it keeps every non-contiguous case.
        and (input.is_contiguous() or not inplace)
    )


def _kernel_slope(negative_slope):
    """The slope as the kernels take it, or None for a slope they do not take."""
    try:
        return check_slope(negative_slope, None)
    except (TypeError, ValueError):
        return None


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """torch.nn.functional.leaky_relu, computed by leaky_kernel where it can be."""
    slope = _kernel_slope(negative_slope)
    if slope is None or not _runs_on_kernel(input, inplace):
        return torch.nn.functional.leaky_relu(input, negative_slope, inplace)
    return _LeakyReLUFunction.apply(input, slope, bool(inplace))


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
