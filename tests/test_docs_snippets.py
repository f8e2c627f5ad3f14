"""Every python block of README.md and docs/ runs as pasted, and every public
docstring's Examples run as doctests.

A block runs in a fresh namespace, so it may use only names it defines or
imports itself. A block that needs a service says so in a comment
("# needs a running Dask scheduler") and is not run. A block that imports an
optional package (torch, dask, pandas, ...) is skipped when that package is
not installed.
"""
import ast
import doctest
import importlib
import importlib.util
import inspect
import pathlib
import re

import pytest

import leaky_kernel

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS_SERVICE = re.compile(r"#\s*needs a running\b")
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(path):
    """(line number, code) of each ```python block of a Markdown page."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(text)]


def _block_params():
    params = []
    for page in PAGES:
        if not page.exists():  # cibuildwheel copies only the tests
            continue
        for line, code in python_blocks(page):
            name = f"{page.relative_to(ROOT)}:{line}"
            marks = [pytest.mark.skip(reason="needs a service")] if NEEDS_SERVICE.search(code) else []
            params.append(pytest.param(code, id=name, marks=marks))
    return params


def _missing_imports(tree):
    """Top-level modules the block imports that are not installed."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return sorted(n for n in names if importlib.util.find_spec(n) is None)


def test_readme_has_python_blocks():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("no README.md beside the tests (cibuildwheel copies only the tests)")
    assert python_blocks(readme), "README.md has no python block"


@pytest.mark.parametrize("code", _block_params())
def test_python_block_runs_as_pasted(code):
    tree = ast.parse(code)  # a signature written as python fails here
    missing = _missing_imports(tree)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    exec(compile(tree, "<snippet>", "exec"), {"__name__": "__snippet__"})


# ------------------------------------------------------------------ docstrings

MODULES = ["leaky_kernel", "leaky_kernel.layer", "leaky_kernel.reference", "leaky_kernel.dask",
           "leaky_kernel.torch"]
# The sections a public function's docstring has; Parameters only when it takes any.
SECTIONS = ("Returns", "See Also", "Examples")


def _public_objects(module_name):
    """{qualified name: object} of the module's public functions and classes,
    with the classes' public methods."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if module_name == "leaky_kernel":
            raise
        pytest.skip(f"{module_name}: {exc}")
    names = getattr(module, "__all__", None) or [
        n for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module_name
    ]
    found = {}
    for name in names:
        value = getattr(module, name)
        if inspect.ismodule(value) or not callable(value):
            continue
        found[f"{module_name}.{name}"] = value
        if inspect.isclass(value):
            for method_name, method in vars(value).items():
                if not method_name.startswith("_") and callable(method):
                    found[f"{module_name}.{name}.{method_name}"] = method
    return found


def _section_names(docstring):
    return set(re.findall(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", docstring or "", re.MULTILINE))


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    finder, runner = doctest.DocTestFinder(recurse=False), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    tests = 0
    for name, obj in _public_objects(module_name).items():
        for test in finder.find(obj, name, globs={}):
            tests += len(test.examples)
            runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {attempted} doctest examples failed (output above)"
    if module_name != "leaky_kernel.torch":
        assert tests > 0


@pytest.mark.parametrize("module_name", [m for m in MODULES if m != "leaky_kernel.torch"])
def test_public_docstrings_have_numpydoc_sections(module_name):
    incomplete = {}
    for name, obj in _public_objects(module_name).items():
        if name.count(".") > module_name.count(".") + 1:  # a method: the class has the examples
            wanted = {"Parameters", "Returns"}
        elif inspect.isclass(obj):
            wanted = {"Parameters", "See Also", "Examples"}
        else:
            wanted = set(SECTIONS) | ({"Parameters"} if _takes_parameters(obj) else set())
        missing = wanted - _section_names(obj.__doc__)
        if missing:
            incomplete[name] = sorted(missing)
    assert not incomplete, f"docstrings missing sections: {incomplete}"


def _takes_parameters(obj):
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # a compiled function without a signature
        return False
    return any(p != "self" for p in parameters)
