# The oracle: leaky_kernel's signatures without out=, where= and num_threads=.
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import Float, Scalar, Slope

__all__ = [
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_forward_mask",
    "leaky_relu_backward_mask",
]

@overload
def leaky_relu(
    x: NDArray[Float], negative_slope: Slope = ..., *, alpha: Slope | None = None
) -> NDArray[Float]: ...
@overload
def leaky_relu(
    x: Scalar, negative_slope: Slope = ..., *, alpha: Slope | None = None
) -> np.floating[Any]: ...
@overload
def leaky_relu(
    x: ArrayLike, negative_slope: Slope = ..., *, alpha: Slope | None = None
) -> NDArray[np.floating[Any]]: ...
@overload
def leaky_relu_backward(
    grad_output: NDArray[Float],
    x: NDArray[Float],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
) -> NDArray[Float]: ...
@overload
def leaky_relu_backward(
    grad_output: Scalar,
    x: Scalar,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
) -> np.floating[Any]: ...
@overload
def leaky_relu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
) -> NDArray[np.floating[Any]]: ...
@overload
def leaky_relu_forward_mask(
    x: NDArray[Float], negative_slope: Slope = ..., *, alpha: Slope | None = None
) -> tuple[NDArray[Float], NDArray[np.uint8]]: ...
@overload
def leaky_relu_forward_mask(
    x: Scalar, negative_slope: Slope = ..., *, alpha: Slope | None = None
) -> tuple[np.floating[Any], NDArray[np.uint8]]: ...
@overload
def leaky_relu_forward_mask(
    x: ArrayLike, negative_slope: Slope = ..., *, alpha: Slope | None = None
) -> tuple[NDArray[np.floating[Any]], NDArray[np.uint8]]: ...
@overload
def leaky_relu_backward_mask(
    grad_output: NDArray[Float],
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
) -> NDArray[Float]: ...
@overload
def leaky_relu_backward_mask(
    grad_output: Scalar,
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
) -> np.floating[Any]: ...
@overload
def leaky_relu_backward_mask(
    grad_output: ArrayLike,
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
) -> NDArray[np.floating[Any]]: ...
