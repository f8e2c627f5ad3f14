from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import Float, Scalar, Slope

class LeakyReLU:
    negative_slope: float | NDArray[Any]
    inplace: bool
    num_threads: int | None
    def __init__(
        self,
        negative_slope: Slope = ...,
        *,
        alpha: Slope | None = None,
        inplace: bool = False,
        num_threads: int | None = None,
    ) -> None: ...
    @overload
    def forward(self, x: NDArray[Float]) -> NDArray[Float]: ...
    @overload
    def forward(self, x: Scalar) -> np.floating[Any]: ...
    @overload
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...
    __call__ = forward
    # The gradient has grad_output's result dtype, as leaky_relu gives for it.
    @overload
    def backward(self, grad_output: NDArray[Float]) -> NDArray[Float]: ...
    @overload
    def backward(self, grad_output: Scalar) -> np.floating[Any]: ...
    @overload
    def backward(self, grad_output: ArrayLike) -> NDArray[np.floating[Any]]: ...
    def __copy__(self) -> LeakyReLU: ...

class PReLU:
    slope: NDArray[np.floating[Any]]
    num_threads: int | None
    def __init__(self, slope: Slope, *, num_threads: int | None = None) -> None: ...
    @overload
    def forward(self, x: NDArray[Float]) -> NDArray[Float]: ...
    @overload
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...
    __call__ = forward
    # (gradient with respect to x, gradient with respect to slope)
    def backward(
        self, grad_output: ArrayLike
    ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...
    def __copy__(self) -> PReLU: ...
    def __getstate__(self) -> dict[str, Any]: ...
