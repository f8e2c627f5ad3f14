"""LeakyReLU: the activation as a layer with forward and backward, for NumPy models."""
import numpy as np

from ._mask import forward_mask_into, leaky_relu_backward_mask
from ._validation import DEFAULT_SLOPE, check_num_threads, check_slope, describe, result_dtype


class LeakyReLU:
    """Leaky ReLU layer: ``y = layer(x)``, then ``dx = layer.backward(grad_output)``.

    The forward computes ``leaky_relu(x)`` and, in the same pass over x, the
    1-bit sign mask of x (see `leaky_relu_forward_mask`); it keeps the mask,
    not x. The backward computes the gradient from that mask: it reads
    grad_output and 1/32 (float32) or 1/64 (float64) as many mask bytes, where
    ``leaky_relu_backward`` would read x.

    Parameters
    ----------
    negative_slope : float, default 0.01
        Any finite real number; `alpha` is its keyword alias.
    inplace : bool, default False
        Overwrite x with the result. x must then be a writeable float16,
        float32 or float64 ndarray of native byte order.
    num_threads : int, optional
        OpenMP threads for each call; default `get_num_threads()`.
    """

    def __init__(
        self, negative_slope=DEFAULT_SLOPE, *, alpha=None, inplace=False, num_threads=None
    ):
        self.negative_slope = check_slope(negative_slope, alpha)
        if not isinstance(inplace, (bool, np.bool_)):
            raise TypeError(f"inplace must be a bool, got {describe(inplace)}")
        self.inplace = bool(inplace)
        self.num_threads = check_num_threads(num_threads)
        self._mask = None  # sign mask of the last forward's input
        self._shape = None  # shape of the last forward's input

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """leaky_relu(x); saves the sign mask of x for `backward`."""
        out = _writeable_result_array(x) if self.inplace else None
        # The previous mask is no longer needed: its memory takes the new one.
        y, mask = forward_mask_into(
            self._mask, x, self.negative_slope, None, out, self.num_threads
        )
        self._mask, self._shape = mask, np.shape(y)
        return y

    def backward(self, grad_output):
        """The gradient with respect to the last forward's input."""
        if self._mask is None:
            raise RuntimeError("backward called before forward: there is no saved sign mask")
        shape = np.shape(grad_output)
        if shape != self._shape:
            raise ValueError(
                f"grad_output must have the shape of the last forward's input, "
                f"{self._shape}, got {shape}"
            )
        return leaky_relu_backward_mask(
            grad_output, self._mask, self.negative_slope, num_threads=self.num_threads
        )

    def __copy__(self):
        # forward writes each new mask into the previous mask's memory, so a
        # copy sharing it would change the other's gradients: it gets its own.
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        if self._mask is not None:
            twin._mask = self._mask.copy()
        return twin

    def __repr__(self):
        options = f"negative_slope={self.negative_slope}"
        if self.inplace:
            options += ", inplace=True"
        if self.num_threads is not None:
            options += f", num_threads={self.num_threads}"
        return f"{type(self).__name__}({options})"


def _writeable_result_array(x):
    """x, checked to be an array that can hold its own result (inplace=True)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"inplace=True needs x to be a numpy.ndarray, got {type(x).__name__}")
    if result_dtype(x.dtype, "x") != x.dtype:
        raise TypeError(
            f"inplace=True needs x to have its result dtype "
            f"(native float16, float32 or float64), got {x.dtype}"
        )
    if not x.flags.writeable:
        raise ValueError("inplace=True needs a writeable x, got a read-only array")
    return x
