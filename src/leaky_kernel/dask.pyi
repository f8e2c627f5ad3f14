import dask.array as da
from numpy.typing import ArrayLike

__all__ = ["leaky_relu", "leaky_relu_backward"]

# Array-likes that are not Dask arrays are wrapped with dask.array.asarray.
def leaky_relu(
    x: da.Array | ArrayLike,
    negative_slope: float = ...,
    *,
    alpha: float | None = None,
    num_threads: int | None = 1,
) -> da.Array: ...
def leaky_relu_backward(
    grad_output: da.Array | ArrayLike,
    x: da.Array | ArrayLike,
    negative_slope: float = ...,
    *,
    alpha: float | None = None,
    x_is_output: bool = False,
    num_threads: int | None = 1,
) -> da.Array: ...
