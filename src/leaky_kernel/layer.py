"""LeakyReLU and PReLU: the activation as layers with forward and backward, for NumPy models."""
import numpy as np

from ._api import leaky_relu, leaky_relu_backward
from ._mask import forward_mask_into, leaky_relu_backward_mask
from ._slope_grad import leaky_relu_slope_grad
from ._rules import DEFAULT_SLOPE, result_dtype
from ._validation import check_num_threads, check_slopes, describe


class LeakyReLU:
    """Leaky ReLU layer: ``y = layer(x)``, then ``dx = layer.backward(grad_output)``.

    The forward computes ``leaky_relu(x)`` and, in the same pass over x, the
    1-bit sign mask of x (see `leaky_relu_forward_mask`); it keeps the mask,
    not x. The backward computes the gradient from that mask: it reads
    grad_output and 1/32 (float32) or 1/64 (float64) as many mask bytes, where
    ``leaky_relu_backward`` would read x.

    Parameters
    ----------
    negative_slope : float or array_like, default 0.01
        Any finite real number, or an array of them that broadcasts to the
        inputs' shape (fixed per-channel slopes; `PReLU` learns them);
        `alpha` is its keyword alias.
    alpha : float or array_like, optional
        Keyword alias of negative_slope; give one or the other.
    inplace : bool, default False
        Overwrite x with the result. x must then be a writeable float16,
        float32 or float64 ndarray of native byte order.
    num_threads : int, optional
        OpenMP threads for each call; default `get_num_threads()`.

    Raises
    ------
    TypeError
        For a slope of the wrong type, both negative_slope and alpha, or an
        inplace that is not a bool.
    ValueError
        For a slope that is not finite (a slope array: at the forward), or a
        thread count below 1.

    See Also
    --------
    PReLU : The same with learned slopes.
    leaky_relu_forward_mask, leaky_relu_backward_mask : The functions under it.
    leaky_kernel.torch.LeakyReLU : The PyTorch module.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> layer = lk.LeakyReLU(0.1)
    >>> layer
    LeakyReLU(negative_slope=0.1)
    >>> layer(np.array([-2.0, 0.5]))
    array([-0.2,  0.5])
    >>> layer.backward(np.ones(2))
    array([0.1, 1. ])
    """

    def __init__(
        self, negative_slope=DEFAULT_SLOPE, *, alpha=None, inplace=False, num_threads=None
    ):
        self.negative_slope = _own_slopes(check_slopes(negative_slope, alpha))
        if not isinstance(inplace, (bool, np.bool_)):
            raise TypeError(f"inplace must be a bool, got {describe(inplace)}")
        self.inplace = bool(inplace)
        self.num_threads = check_num_threads(num_threads)
        self._mask = None  # sign mask of the last forward's input
        self._shape = None  # shape of the last forward's input

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """leaky_relu(x); saves the sign mask of x for `backward`.

        Parameters
        ----------
        x : array_like
            The input; with ``inplace=True``, overwritten with the result.

        Returns
        -------
        y : ndarray
            ``leaky_relu(x, negative_slope)``, C-ordered.
        """
        out = _writeable_result_array(x) if self.inplace else None
        # The previous mask is no longer needed: its memory takes the new one.
        y, mask = forward_mask_into(
            self._mask, x, self.negative_slope, None, out, self.num_threads
        )
        self._mask, self._shape = mask, np.shape(y)
        return y

    def backward(self, grad_output):
        """The gradient with respect to the last forward's input.

        Parameters
        ----------
        grad_output : array_like
            The gradient with respect to the forward's output, of its shape.

        Returns
        -------
        grad_input : ndarray
            grad_output's result dtype, C-ordered.

        Raises
        ------
        RuntimeError
            Before any forward.
        ValueError
            For a grad_output of another shape than the last forward's input.
        """
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
        twin.negative_slope = _own_slopes(self.negative_slope)
        if self._mask is not None:
            twin._mask = self._mask.copy()
        return twin

    def __repr__(self):
        options = f"negative_slope={_slope_text(self.negative_slope)}"
        if self.inplace:
            options += ", inplace=True"
        if self.num_threads is not None:
            options += f", num_threads={self.num_threads}"
        return f"{type(self).__name__}({options})"


class PReLU:
    """Leaky ReLU with a learnable slope array, as torch.nn.PReLU:
    ``y = layer(x)``, then ``dx, dslope = layer.backward(grad_output)``.

    Parameters
    ----------
    slope : array_like
        The initial slopes, any shape that broadcasts to the inputs' shape:
        ``np.full((C, 1, 1), 0.25)`` for one slope per channel of (N, C, H, W)
        inputs, ``np.full(F, 0.25)`` for one per feature of (N, F) inputs. The
        layer keeps its own float copy in `slope` (float64 unless given as
        float32 or float16), which a training step updates in place or
        replaces: ``layer.slope -= rate * dslope``.
    num_threads : int, optional
        OpenMP threads for each call; default `get_num_threads()`.

    Raises
    ------
    TypeError
        For slopes of the wrong type.
    ValueError
        For a thread count below 1; slopes that are not finite, at the
        forward.

    See Also
    --------
    LeakyReLU : Fixed slopes, with a 1-bit mask for the backward.
    leaky_relu_slope_grad : The slope gradient it returns.

    Notes
    -----
    The forward keeps a reference to its input for the backward, as the
    slope gradient needs x itself: change x in place between the two and the
    gradients are wrong. A masked x keeps its mask: the backward honours it.

    ``copy.copy``, ``copy.deepcopy`` and pickling give a layer its own
    `slope`. Pickles and deep copies carry the layer, not the last forward's
    input (a batch may be large): their backward needs a forward first.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> layer = lk.PReLU(np.full((2, 1), 0.25))  # one slope per row
    >>> x = np.array([[-4.0, 1.0], [-8.0, 2.0]])
    >>> layer(x)
    array([[-1.,  1.],
           [-2.,  2.]])
    >>> dx, dslope = layer.backward(np.ones_like(x))
    >>> dslope
    array([[-4.],
           [-8.]])
    >>> layer.slope -= 0.01 * dslope  # a training step
    """

    def __init__(self, slope, *, num_threads=None):
        slope = np.asarray(check_slopes(slope, None))
        float_dtype = slope.dtype if slope.dtype.kind == "f" else np.dtype(np.float64)
        self.slope = np.array(slope, dtype=float_dtype)
        self.num_threads = check_num_threads(num_threads)
        self._x = None  # the last forward's input

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """leaky_relu(x, slope); keeps x for `backward`.

        Parameters
        ----------
        x : array_like
            The input; the slope must broadcast to its shape.

        Returns
        -------
        y : ndarray
            ``leaky_relu(x, slope)``.
        """
        y = leaky_relu(x, self.slope, num_threads=self.num_threads)
        self._x = x if np.ma.isMaskedArray(x) else np.asarray(x)
        return y

    def backward(self, grad_output):
        """The gradients with respect to the last forward's input and to `slope`.

        Parameters
        ----------
        grad_output : array_like
            The gradient with respect to the forward's output, of its shape.

        Returns
        -------
        grad_input : ndarray
            The gradient with respect to x.
        grad_slope : ndarray
            The gradient with respect to `slope`, of slope's shape.

        Raises
        ------
        RuntimeError
            Before any forward.
        ValueError
            For a grad_output of another shape than the last forward's input.
        """
        if self._x is None:
            raise RuntimeError("backward called before forward: there is no saved input")
        shape = np.shape(grad_output)
        if shape != self._x.shape:
            raise ValueError(
                f"grad_output must have the shape of the last forward's input, "
                f"{self._x.shape}, got {shape}"
            )
        grad_input = leaky_relu_backward(
            grad_output, self._x, self.slope, num_threads=self.num_threads
        )
        return grad_input, leaky_relu_slope_grad(grad_output, self._x, self.slope.shape)

    def __copy__(self):
        # The slope is trained in place (``layer.slope -= ...``): a copy
        # sharing it would train the original too.
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.slope = self.slope.copy()
        return twin

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_x"] = None
        return state

    def __repr__(self):
        options = f"slope={_slope_text(self.slope)}"
        if self.num_threads is not None:
            options += f", num_threads={self.num_threads}"
        return f"{type(self).__name__}({options})"


def _own_slopes(slopes):
    """A layer's own copy of an array slope (the caller may change theirs)."""
    return slopes.copy() if isinstance(slopes, np.ndarray) else slopes


def _slope_text(slopes):
    """A slope as a repr shows it: never the elements of an array."""
    return f"<{describe(slopes)}>" if isinstance(slopes, np.ndarray) else repr(slopes)


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
