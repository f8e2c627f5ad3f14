from typing import Any, Callable, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import reference as reference
from ._typing import Casting, Container, Float, Order, Out, ResultDType, Scalar, Slope, Where
from .layer import LeakyReLU as LeakyReLU
from .layer import PReLU as PReLU

__version__: str
# Mirrors __init__.py's; tests/test_typing.py's stubtest run fails when they differ.
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

@overload
def leaky_relu(
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: Out,
    where: Where = True,
    dtype: ResultDType | None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> Out: ...
@overload
def leaky_relu(
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    where: Where = True,
    dtype: ResultDType,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> NDArray[np.floating[Any]]: ...
@overload
def leaky_relu(
    x: NDArray[Float],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> NDArray[Float]: ...
@overload
def leaky_relu(
    x: Scalar,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> np.floating[Any]: ...
@overload
def leaky_relu(
    x: Container,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> Container: ...
@overload
def leaky_relu(
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> NDArray[np.floating[Any]]: ...
@overload
def leaky_relu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
    out: Out,
    where: Where = True,
    dtype: ResultDType | None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> Out: ...
@overload
def leaky_relu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
    out: None = None,
    where: Where = True,
    dtype: ResultDType,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> NDArray[np.floating[Any]]: ...
@overload
def leaky_relu_backward(
    grad_output: NDArray[Float],
    x: NDArray[Float],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> NDArray[Float]: ...
@overload
def leaky_relu_backward(
    grad_output: Scalar,
    x: Scalar,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> np.floating[Any]: ...
@overload
def leaky_relu_backward(
    grad_output: Container,
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> Container: ...
@overload
def leaky_relu_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    x_is_output: bool = False,
    out: None = None,
    where: Where = True,
    dtype: None = None,
    casting: Casting = "same_kind",
    order: Order = "K",
    subok: bool = True,
    num_threads: int | None = None,
) -> NDArray[np.floating[Any]]: ...
@overload
def leaky_relu_forward_mask(
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: Out,
    num_threads: int | None = None,
) -> tuple[Out, NDArray[np.uint8]]: ...
@overload
def leaky_relu_forward_mask(
    x: NDArray[Float],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    num_threads: int | None = None,
) -> tuple[NDArray[Float], NDArray[np.uint8]]: ...
@overload
def leaky_relu_forward_mask(
    x: Scalar,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    num_threads: int | None = None,
) -> tuple[np.floating[Any], NDArray[np.uint8]]: ...
@overload
def leaky_relu_forward_mask(
    x: ArrayLike,
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    num_threads: int | None = None,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.uint8]]: ...
@overload
def leaky_relu_backward_mask(
    grad_output: ArrayLike,
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: Out,
    num_threads: int | None = None,
) -> Out: ...
@overload
def leaky_relu_backward_mask(
    grad_output: NDArray[Float],
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    num_threads: int | None = None,
) -> NDArray[Float]: ...
@overload
def leaky_relu_backward_mask(
    grad_output: Scalar,
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    num_threads: int | None = None,
) -> np.floating[Any]: ...
@overload
def leaky_relu_backward_mask(
    grad_output: ArrayLike,
    mask: NDArray[np.uint8],
    negative_slope: Slope = ...,
    *,
    alpha: Slope | None = None,
    out: None = None,
    num_threads: int | None = None,
) -> NDArray[np.floating[Any]]: ...
def leaky_relu_slope_grad(
    grad_output: ArrayLike, x: ArrayLike, slope_shape: int | tuple[int, ...]
) -> NDArray[np.floating[Any]]: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int | None) -> None: ...
def openmp_enabled() -> bool: ...
def tune(
    rounds: int = 5, size_mib: int = 256, progress: Callable[[str], object] | None = ...
) -> dict[str, Any]: ...
def set_tuning(**choices: int | str) -> None: ...
def get_tuning() -> dict[str, tuple[Any, Any]]: ...
