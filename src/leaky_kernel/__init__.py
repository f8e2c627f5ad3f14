"""leaky_kernel: Leaky ReLU and its gradient for NumPy arrays, compiled and exact.

    leaky_relu(x, negative_slope=0.01, *, alpha=None, out=None, where=True,
               num_threads=None)
    leaky_relu_backward(grad_output, x, negative_slope=0.01, *, alpha=None,
                        x_is_output=False, out=None, where=True, num_threads=None)
    leaky_relu_forward_mask(x, negative_slope=0.01, *, alpha=None, out=None,
                            num_threads=None) -> (y, mask)
    leaky_relu_backward_mask(grad_output, mask, negative_slope=0.01, *, alpha=None,
                             out=None, num_threads=None)
    leaky_relu_slope_grad(grad_output, x, slope_shape)
    LeakyReLU(negative_slope=0.01, *, alpha=None, inplace=False, num_threads=None)
    PReLU(slope, *, num_threads=None)
    tune(), set_tuning(**choices), get_tuning(): fitting the kernels to this machine

`reference` holds the NumPy oracle with the same signatures.
"""
from . import reference
from ._api import leaky_relu, leaky_relu_backward
from ._mask import leaky_relu_backward_mask, leaky_relu_forward_mask
from ._openmp import openmp_enabled
from ._slope_grad import leaky_relu_slope_grad
from ._threads import get_num_threads, set_num_threads
from ._tuning import get_tuning, set_tuning, tune
from ._version import __version__
from .layer import LeakyReLU, PReLU

__all__ = [
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_forward_mask",
    "leaky_relu_backward_mask",
    "leaky_relu_slope_grad",
    "LeakyReLU",
    "PReLU",
    "get_num_threads",
    "set_num_threads",
    "openmp_enabled",
    "tune",
    "set_tuning",
    "get_tuning",
    "reference",
    "__version__",
]
