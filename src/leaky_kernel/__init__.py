"""leaky_kernel: Leaky ReLU and its gradient for NumPy arrays, compiled and exact.

    leaky_relu(x, negative_slope=0.01, *, alpha=None, out=None, num_threads=None)
    leaky_relu_backward(grad_output, x, negative_slope=0.01, *, alpha=None,
                        x_is_output=False, out=None, num_threads=None)

`reference` holds the NumPy oracle with the same signatures.
"""
from . import reference
from ._api import leaky_relu, leaky_relu_backward
from ._openmp import openmp_enabled
from ._threads import get_num_threads, set_num_threads
from ._version import __version__

__all__ = [
    "leaky_relu",
    "leaky_relu_backward",
    "get_num_threads",
    "set_num_threads",
    "openmp_enabled",
    "reference",
    "__version__",
]
