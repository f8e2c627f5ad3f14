# Type names shared by the stubs; a stub-only module, never imported at run time.
from typing import Any, Literal, Protocol, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike

# The float dtypes a result keeps (others compute in float64).
Float = TypeVar("Float", np.float16, np.float32, np.float64)
# out=: the call returns the array it was given.
Out = TypeVar("Out", bound=np.ndarray[Any, Any])
# Scalar inputs give a NumPy scalar, as ufuncs do. So do 0-d arrays, which
# types cannot tell from other arrays: array inputs are typed as giving arrays.
Scalar = Union[float, np.floating[Any], np.integer[Any], np.bool_]
# A slope: one number, or an array of them that broadcasts against x.
Slope = Union[float, ArrayLike]
# where=: True, or booleans that broadcast to the result.
Where = Union[bool, ArrayLike]
# dtype=: the float dtype to compute and return in.
ResultDType = Union[type[np.float16], type[np.float32], type[np.float64], np.dtype[np.floating[Any]], str]
# casting= and order=, as NumPy's ufuncs take them.
Casting = Literal["no", "equiv", "safe", "same_kind", "unsafe"]
Order = Literal[None, "K", "A", "C", "F"]

class SupportsArrayUfunc(Protocol):
    """A container that dispatches ufuncs (pandas, xarray, Dask, masked arrays)."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any: ...

# Such a container comes back as its own type.
Container = TypeVar("Container", bound=SupportsArrayUfunc)
