"""Warnings name the user's line, not a file of the package: the line that
called the function, or the line that imported the package."""

import os
import textwrap
import warnings

import numpy as np
import pytest

import leaky_kernel as lk


def recorded(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("container", ["ndarray", "masked", "dask"])
def test_where_without_out_warns_at_the_callers_line(direction, container):
    x = np.array([1.0, -2.0, 3.0])
    if container == "masked":
        x = np.ma.masked_array(x, mask=[False, False, True])
    elif container == "dask":
        x = pytest.importorskip("dask.array").from_array(x)
    where = np.array([True, False, True])
    if direction == "forward":
        caught = recorded(lambda: lk.leaky_relu(x, 0.1, where=where))
    else:
        caught = recorded(lambda: lk.leaky_relu_backward(x, x, 0.1, where=where))
    assert [w.category for w in caught] == [UserWarning]
    assert caught[0].filename == __file__
    assert "where= used without out=" in str(caught[0].message)


@pytest.mark.parametrize("container", ["Series", "DataArray"])
def test_where_without_out_warns_once_for_labelled_containers(container):
    # pandas and xarray call the ufunc again without out=, so NumPy's own
    # warning names their file, as it does for np.exp(x, where=...).
    x = np.array([1.0, -2.0, 3.0])
    if container == "Series":
        x = pytest.importorskip("pandas").Series(x)
    else:
        x = pytest.importorskip("xarray").DataArray(x)
    caught = recorded(lambda: lk.leaky_relu(x, 0.1, where=np.array([True, False, True])))
    assert [w.category for w in caught] == [UserWarning]
    assert os.path.dirname(lk.__file__) not in caught[0].filename


def test_where_with_out_does_not_warn():
    x = np.array([1.0, -2.0, 3.0])
    assert recorded(lambda: lk.leaky_relu(x, 0.1, out=x.copy(), where=x > 0)) == []


# The import's warnings, recorded in a child (the package is imported once
# per process): they must name the importing script's line.
IMPORT_WARNINGS = textwrap.dedent(
    """
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import leaky_kernel
    for w in caught:
        print(w.filename, w.lineno, w.message)
    """
)


def _import_warnings(run_python, tmp_path, env):
    script = tmp_path / "importer.py"
    script.write_text(IMPORT_WARNINGS)
    process = run_python(str(script), env=env)
    assert process.returncode == 0, process.stderr[-2000:]
    return script, process.stdout.splitlines()


def test_an_unavailable_simd_level_warns_at_the_importing_line(run_python, tmp_path):
    script, lines = _import_warnings(run_python, tmp_path, {"LEAKY_KERNEL_SIMD": "sse9"})
    assert len(lines) == 1 and "LEAKY_KERNEL_SIMD='sse9'" in lines[0], lines
    assert lines[0].startswith(f"{script} 5 "), lines


def test_a_bad_tuning_variable_warns_at_the_importing_line(run_python, tmp_path):
    script, lines = _import_warnings(run_python, tmp_path, {"LEAKY_KERNEL_TUNING": "bogus"})
    assert len(lines) == 1 and "LEAKY_KERNEL_TUNING ignored" in lines[0], lines
    assert lines[0].startswith(f"{script} 5 "), lines


def test_set_tuning_warns_at_the_callers_line(monkeypatch):
    monkeypatch.setenv("LEAKY_KERNEL_TUNING", "bogus")
    try:
        caught = recorded(lambda: lk.set_tuning())
    finally:
        monkeypatch.setenv("LEAKY_KERNEL_TUNING", "default")
        lk.set_tuning()
    assert [w.category for w in caught] == [RuntimeWarning]
    assert caught[0].filename == __file__

