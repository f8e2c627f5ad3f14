from typing import NoReturn

import torch

__all__ = ["leaky_relu", "LeakyReLU", "KERNEL_MIN_NUMEL"]

KERNEL_MIN_NUMEL: int

def leaky_relu(
    input: torch.Tensor, negative_slope: float = ..., inplace: bool = False
) -> torch.Tensor: ...

class LeakyReLU(torch.nn.Module):
    __constants__: list[str]
    negative_slope: float
    inplace: bool
    def __init__(self, negative_slope: float = ..., inplace: bool = False) -> None: ...
    def forward(self, input: torch.Tensor) -> torch.Tensor: ...
    def extra_repr(self) -> str: ...
    def __prepare_scriptable__(self) -> NoReturn: ...
