"""Every python block of docs/pytorch.md runs as pasted (the one that
compiles with inductor is slow: ``-m slow``)."""
import pathlib
import re

import pytest

pytest.importorskip("torch")

PAGE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "pytorch.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S) if PAGE.exists() else []


def _marks(block):
    return [pytest.mark.slow] if "torch.compile(" in block else []


@pytest.mark.skipif(not PAGE.exists(), reason="docs/ is not next to tests/ (an installed wheel)")
@pytest.mark.parametrize(
    "block", [pytest.param(b, marks=_marks(b), id=f"block{i}") for i, b in enumerate(BLOCKS)]
)
def test_python_block_runs(block):
    exec(compile(block, str(PAGE), "exec"), {})
