"""The tuning (_tuning.py): where each choice comes from, and that every
choice computes the same bits. Nothing here measures speed."""

import json
import textwrap

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import _tuning, reference
from leaky_kernel._dispatch import LEVELS, load
from leaky_kernel._rules import MASK_DTYPE, mask_nbytes
from leaky_kernel._testing import STREAM_ALWAYS, bits_equal, kernel_choices, random_operand

KERNEL_NAMES = {np.float32: "float", np.float64: "double"}


@pytest.fixture
def level_kernels(request):
    return load(request.param)


@pytest.mark.parametrize("level_kernels", LEVELS, indirect=True)
@pytest.mark.parametrize("prefetch", _tuning.PREFETCH_KINDS)
@pytest.mark.parametrize("prefetch_bytes", [0, 64, 1000, 4096])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_prefetch_choice_computes_the_oracle(level_kernels, prefetch, prefetch_bytes, dtype):
    rng = np.random.default_rng(prefetch_bytes)
    x = random_operand(rng, 3 * 4096 + 13, dtype)
    g = random_operand(rng, x.size, dtype)
    name = KERNEL_NAMES[dtype]
    choices = {**STREAM_ALWAYS, "prefetch": prefetch, "prefetch_bytes": prefetch_bytes,
               "min_thread_elements": 4096}
    with kernel_choices(level_kernels, **choices):
        for n_threads in (1, 2):
            got = level_kernels.select_contiguous(x, x, 0.3, None, n_threads)
            assert bits_equal(got, reference.leaky_relu(x, 0.3))
            got = level_kernels.select_contiguous(g, x, 0.3, None, n_threads)
            assert bits_equal(got, reference.leaky_relu_backward(g, x, 0.3))
            out = np.empty(x.size // 2 + 1, dtype)[None]
            level_kernels.leaky_select[name](g[None, ::2], x[None, ::2], out, 0.3, n_threads, True)
            assert bits_equal(out[0], reference.leaky_relu_backward(g[::2], x[::2], 0.3))
            y = np.empty_like(x)
            mask = np.empty(mask_nbytes(x.size), MASK_DTYPE)
            level_kernels.forward_mask[name](x, y, mask, 0.3, n_threads, True)
            assert bits_equal(y, reference.leaky_relu(x, 0.3))
            level_kernels.backward_mask[name](g, mask, y, 0.3, n_threads, False)
            assert bits_equal(y, reference.leaky_relu_backward(g, x, 0.3))


@pytest.mark.parametrize("min_thread_elements", [1, 100, 1 << 14, 1 << 40])
def test_any_serial_cutoff_computes_the_oracle(min_thread_elements):
    x = random_operand(np.random.default_rng(1), 5 * 1024 + 3, np.float32)
    with kernel_choices(lk._dispatch.kernels, min_thread_elements=min_thread_elements):
        assert bits_equal(lk.leaky_relu(x, -2.0, num_threads=2), reference.leaky_relu(x, -2.0))


MIB = _tuning.MIB
OUT_ROUTES = [name for name in _tuning.ROUTES if " out " in name]
FRESH_ROUTES = [name for name in _tuning.ROUTES if " fresh " in name]


def test_set_tuning_overrides_and_says_so():
    try:
        lk.set_tuning(prefetch="t0", stream_fresh_min_bytes=123)
        plans, reasons = lk.get_tuning()["plans"]
        for name in FRESH_ROUTES:
            assert plans[name] == [(0, "ordinary"), (123, "stream t0")]
        for name in OUT_ROUTES:
            assert plans[name] == [(0, "ordinary"), (64 * MIB, "stream t0")]
        assert set(reasons.values()) == {"set by set_tuning()"}
        configuration = lk._dispatch.kernels.get_configuration()["plans"]
        assert configuration["forward fresh serial"] == [(0, "ordinary", "none", 0),
                                                         (123, "lines", "t0", 1024)]
    finally:
        lk.set_tuning()
    plans, reasons = lk.get_tuning()["plans"]
    assert plans == _tuning.plans_from_rule(_tuning.RULE)
    assert set(reasons.values()) == {"default rule"}


def test_set_tuning_takes_what_the_environment_variable_takes():
    try:
        lk.set_tuning(stream_out_min_bytes="never", min_thread_elements="4096")
        plans, _ = lk.get_tuning()["plans"]
        assert all(plans[name] == [(0, "ordinary")] for name in OUT_ROUTES)
        assert lk.get_tuning()["min_thread_elements"] == (4096, "set by set_tuning()")
    finally:
        lk.set_tuning()


@pytest.mark.parametrize(
    "choices, error, message",
    [
        ({"prefetch": "t1"}, ValueError, "prefetch must be one of"),
        ({"streaming": 1}, TypeError, "unknown tuning choice 'streaming'"),
        ({"stream_out_min_bytes": -1}, ValueError, "stream_out_min_bytes must be an int from 0"),
        ({"min_thread_elements": 0}, ValueError, "min_thread_elements must be an int from 1"),
        ({"prefetch_bytes": 1.5}, TypeError, "prefetch_bytes must be an int"),
        ({"stream_out_min_bytes": "soon"}, ValueError, "int or 'never'"),
    ],
)
def test_set_tuning_rejects_bad_choices_and_changes_nothing(choices, error, message):
    before = lk.get_tuning()
    with pytest.raises(error, match=message):
        lk.set_tuning(**choices)
    assert lk.get_tuning() == before


SHOW_TUNING = textwrap.dedent(
    """
    import json
    import leaky_kernel as lk
    print(json.dumps(lk.get_tuning()))
    """
)


def show_tuning(run_python, **env):
    process = run_python("-c", SHOW_TUNING, env=env)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout), process.stderr


def test_the_environment_variable_overrides(run_python, tmp_path):
    tuning, _ = show_tuning(run_python, LEAKY_KERNEL_TUNING="prefetch=nta, stream_out_min_bytes=never",
                            LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    plans, reasons = tuning["plans"]
    assert all(plans[name] == [[0, "ordinary"]] for name in OUT_ROUTES)
    assert set(reasons.values()) == {"set by LEAKY_KERNEL_TUNING"}


def test_a_bad_environment_variable_warns_and_is_ignored(run_python, tmp_path):
    tuning, stderr = show_tuning(run_python, LEAKY_KERNEL_TUNING="prefetch=fast",
                                 LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    assert "LEAKY_KERNEL_TUNING ignored: prefetch must be one of" in stderr
    plans, reasons = tuning["plans"]
    assert plans["forward out parallel"] == [[0, "ordinary"], [64 * MIB, "stream"]]
    assert "fits this machine" in reasons["forward out parallel"]


def test_a_serial_fit_keeps_the_thread_cutoff_a_parallel_fit_stored(tmp_path):
    path = str(tmp_path / "wisdom.json")
    parallel = {"plans": {"forward out parallel": [(0, "ordinary")]},
                "min_thread_elements": 4096, "by": "fitting", "date": "2026-01-02"}
    serial = {"plans": {"forward out serial": [(0, "ordinary"), (3 * MIB, "stream")]},
              "by": "fitting", "date": "2026-01-03"}
    _tuning.write_wisdom(parallel, path)
    _tuning.write_wisdom(serial, path)
    stored = _tuning.read_wisdom(path)
    assert stored["min_thread_elements"] == 4096
    assert set(stored["plans"]) == {"forward out parallel", "forward out serial"}
    assert stored["date"] == "2026-01-03"


def test_wisdom_is_read_at_import_for_this_machine_only(run_python, tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(tmp_path))
    entry = {"plans": {"forward out parallel": [(0, "ordinary"), (3 * MIB, "stream nta")]},
             "min_thread_elements": 4096, "by": "tune", "date": "2026-01-02"}
    _tuning.write_wisdom(entry)
    wisdom = json.loads((tmp_path / "wisdom.json").read_text())
    wisdom["another CPU"] = {"plans": {"forward out serial": [[0, "pages"]]}}
    (tmp_path / "wisdom.json").write_text(json.dumps(wisdom))
    tuning, _ = show_tuning(run_python, LEAKY_KERNEL_TUNING="", LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    plans, reasons = tuning["plans"]
    assert plans["forward out parallel"] == [[0, "ordinary"], [3 * MIB, "stream nta"]]
    assert reasons["forward out parallel"] == "measured by tune on 2026-01-02"
    assert tuning["min_thread_elements"] == [4096, "measured by tune on 2026-01-02"]
    assert plans["forward out serial"] == [[0, "ordinary"], [64 * MIB, "stream"]]
    # "default" ignores the wisdom.
    tuning, _ = show_tuning(run_python, LEAKY_KERNEL_TUNING="default",
                            LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    assert tuning["plans"][0]["forward out parallel"] == [[0, "ordinary"], [64 * MIB, "stream"]]


HOSTILE_WISDOM = [
    "{not json",
    "[1, 2]",
    '{"%s": {"plans": 7}}',
    '{"%s": {"plans": {"forward out serial": [[0, "warp"]]}}}',
    '{"%s": {"plans": {"forward out serial": [[5, "ordinary"]]}}}',
    '{"%s": {"plans": {"forward out serial": [[0, "ordinary"], [0, "stream"]]}}}',
    '{"%s": {"plans": {"sideways": [[0, "ordinary"]]}}}',
    '{"%s": {"plans": {}, "min_thread_elements": -3}}',
    '{"%s": {"plans": {}, "date": ["a", "list"], "by": {"a": "dict"}}}',
    '{"%s": "a string"}',
    "[" * 100000 + "]" * 100000,
    '{"%s": ' + "[" * 100000 + "]" * 100000 + "}",
]


@pytest.mark.parametrize("content", HOSTILE_WISDOM, ids=range(len(HOSTILE_WISDOM)))
def test_unreadable_wisdom_falls_back_to_the_defaults(run_python, tmp_path, content):
    (tmp_path / "wisdom.json").write_text(content.replace("%s", _tuning.machine_key()))
    tuning, stderr = show_tuning(run_python, LEAKY_KERNEL_TUNING="",
                                 LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    plans, reasons = tuning["plans"]
    assert plans["forward out serial"] == [[0, "ordinary"], [64 * MIB, "stream"]]
    assert tuning["min_thread_elements"][0] == _tuning.RULE["min_thread_elements"]


def test_the_self_check_runs_with_unreadable_wisdom(run_python, tmp_path):
    (tmp_path / "wisdom.json").write_text(HOSTILE_WISDOM[-1].replace("%s", _tuning.machine_key()))
    process = run_python("-m", "leaky_kernel", timeout=300,
                         env={"LEAKY_KERNEL_TUNING": "", "LEAKY_KERNEL_CACHE_DIR": str(tmp_path)})
    assert process.returncode == 0, process.stderr


def canned_fit(calls, regret=1.0):
    """A stand-in for _tuning.fit that counts its calls and measures nothing."""
    def fit(mode):
        calls.append(mode)
        plans = {_tuning.route("forward", "out", mode): [(0, "ordinary"), (2 * MIB, "stream nta")],
                 _tuning.route("backward", "out", mode): [(0, "stream t0")]}
        return {"plans": plans, "regret": {name: {"1048576": regret} for name in plans},
                "by": "fitting", "date": "2026-12-06", "min_thread_elements": 1 << 14}
    return fit


@pytest.fixture
def fitting(tmp_path, monkeypatch):
    """Fitting as a user without wisdom meets it, with `fit` replaced; the
    suite's default configuration restored afterwards."""
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LEAKY_KERNEL_TUNING", "")
    calls = []
    monkeypatch.setattr(_tuning, "fit", canned_fit(calls))
    before = lk._dispatch.kernels.get_configuration()
    _tuning.apply()
    yield calls
    monkeypatch.setenv("LEAKY_KERNEL_TUNING", "default")
    _tuning._fitted.clear()
    _tuning._fit_skipped.clear()
    _tuning.apply()
    assert lk._dispatch.kernels.get_configuration() == before


@pytest.mark.parametrize("op", ["forward", "backward", "forward mask", "backward mask"])
def test_the_first_large_call_fits_the_machine_once(fitting, tmp_path, op):
    rng = np.random.default_rng(0)
    small = random_operand(rng, 1 << 10, np.float32)
    x = random_operand(rng, 1 << 17, np.float32)  # 1 MiB moved at least
    g = random_operand(rng, x.size, np.float32)
    calls = {
        "forward": lambda a: lk.leaky_relu(a, 0.2, out=a.copy()),
        "backward": lambda a: lk.leaky_relu_backward(g[:a.size], a, 0.2),
        "forward mask": lambda a: lk.leaky_relu_forward_mask(a, 0.2)[0],
        "backward mask": lambda a: lk.leaky_relu_backward_mask(
            g[:a.size], lk.leaky_relu_forward_mask(a, 0.2)[1], 0.2),
    }
    want = {"forward": reference.leaky_relu, "forward mask": reference.leaky_relu,
            "backward": lambda a, s: reference.leaky_relu_backward(g[:a.size], a, s),
            "backward mask": lambda a, s: reference.leaky_relu_backward(g[:a.size], a, s)}[op]
    assert bits_equal(calls[op](small), want(small, 0.2))
    assert fitting == []  # too small to care
    assert bits_equal(calls[op](x), want(x, 0.2))
    assert fitting == [_tuning.current_mode()]
    assert bits_equal(calls[op](x), want(x, 0.2))
    assert len(fitting) == 1
    plans, reasons = lk.get_tuning()["plans"]
    name = _tuning.route("forward", "out", fitting[0])
    assert plans[name] == [(0, "ordinary"), (2 * MIB, "stream nta")]
    assert reasons[name] == "measured by fitting on 2026-12-06"
    assert _tuning.read_wisdom()["plans"][name] == plans[name]
    assert lk._dispatch.kernels.get_configuration()["fit_min_bytes"][fitting[0]] == _tuning.NEVER


def test_fitting_serves_in_place_calls(fitting):
    x = random_operand(np.random.default_rng(1), 1 << 18, np.float64)
    want = reference.leaky_relu(x, 0.5)
    assert lk.leaky_relu(x, 0.5, out=x) is x
    assert fitting and bits_equal(x, want)


def test_a_fit_that_finds_the_machine_busy_keeps_the_default_rule_and_is_not_retried(
        fitting, monkeypatch):
    def busy(mode):
        fitting.append(mode)
        raise _tuning.MachineBusy("3.0 other tasks were runnable")

    monkeypatch.setattr(_tuning, "fit", busy)
    x = np.ones(1 << 18, np.float32)
    lk.leaky_relu(x)
    lk.leaky_relu(x)
    assert len(fitting) == 1
    plans, reasons = lk.get_tuning()["plans"]
    name = _tuning.route("forward", "out", fitting[0])
    assert plans[name] == _tuning.plans_from_rule(_tuning.RULE)[name]
    assert reasons[name] == "default rule (fitting skipped: 3.0 other tasks were runnable)"
    assert lk._dispatch.kernels.get_configuration()["fit_min_bytes"][fitting[0]] == _tuning.NEVER


def test_fitting_where_wisdom_cannot_be_written_applies_to_the_process(fitting, tmp_path,
                                                                      monkeypatch):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(blocked / "cache"))
    lk.leaky_relu(np.ones(1 << 18, np.float32))
    name = _tuning.route("forward", "out", fitting[0])
    plans, reasons = lk.get_tuning()["plans"]
    assert plans[name] == [(0, "ordinary"), (2 * MIB, "stream nta")]
    assert reasons[name].startswith("measured by fitting on 2026-12-06 (not stored:")


def test_default_tuning_never_fits(monkeypatch):
    calls = []
    monkeypatch.setattr(_tuning, "fit", canned_fit(calls))
    lk.leaky_relu(np.ones(1 << 20, np.float32))
    assert calls == [] and not _tuning._fit_pending


FORK_AFTER_FIT = textwrap.dedent(
    """
    import os, numpy as np
    import leaky_kernel as lk
    x = np.ones(1 << 18, np.float32)
    lk.leaky_relu(x)
    pid = os.fork()
    if pid == 0:
        y = lk.leaky_relu(-x)
        os._exit(0 if (y == np.float32(-0.01)).all() else 3)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), lk.get_tuning()["plans"][1]["forward out parallel"])
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_fitting_for_real_then_a_forked_child(run_python, tmp_path):
    """Fitting as it runs on this machine: measured and stored, or skipped on
    a busy machine; results exact either way, and a forked child runs."""
    process = run_python("-c", FORK_AFTER_FIT, timeout=300,
                         env={"LEAKY_KERNEL_TUNING": "", "LEAKY_KERNEL_CACHE_DIR": str(tmp_path)})
    assert process.returncode == 0, process.stderr
    status, reason = process.stdout.split(" ", 1)
    assert status == "0"
    stored = (tmp_path / "wisdom.json").exists()
    assert reason.startswith("measured by fitting") == stored, reason
    assert stored or "fitting skipped" in reason


def test_tune_measures_both_modes_stores_and_applies(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(tmp_path))
    calls = []

    def fit(mode, outputs, *args, **options):
        calls.append((mode, outputs))
        entry = canned_fit([])(mode)
        return {**entry, "min_thread_elements": 2048}

    monkeypatch.setattr(_tuning, "fit", fit)
    monkeypatch.delenv("LEAKY_KERNEL_TUNING")
    before = lk._dispatch.kernels.get_configuration()
    try:
        entry = lk.tune(progress=None)
        modes = {mode for mode, _ in calls}
        assert modes == ({"serial", "parallel"} if _tuning.THREAD_CAP > 1 else {"serial"})
        assert all(outputs == ("out", "fresh") for _, outputs in calls)
        assert _tuning.read_wisdom()["plans"] == _tuning.check_plans(entry["plans"])
        plans, reasons = lk.get_tuning()["plans"]
        for name, bands in entry["plans"].items():
            assert plans[name] == bands
            assert reasons[name].startswith("measured by tune on ")
        assert lk.get_tuning()["min_thread_elements"][0] == 2048
    finally:
        monkeypatch.setenv("LEAKY_KERNEL_TUNING", "default")
        _tuning._fitted.clear()
        _tuning.apply()
    assert lk._dispatch.kernels.get_configuration() == before


def test_tune_into_a_directory_it_cannot_make_says_so_before_measuring(tmp_path, monkeypatch):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(blocked / "cache"))
    monkeypatch.setattr(_tuning, "fit", lambda *a, **k: pytest.fail("measured"))
    before = lk._dispatch.kernels.get_configuration()
    with pytest.raises(OSError, match="cannot write wisdom in") as error:
        lk.tune(progress=None)
    assert "\n" not in str(error.value)
    assert lk._dispatch.kernels.get_configuration() == before


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"rounds": 0}, ValueError, "rounds must be at least 1, got 0"),
        ({"size_mib": -1}, ValueError, "size_mib must be at least 1, got -1"),
        ({"size_mib": 1.5}, TypeError, "size_mib must be an int, got float"),
        ({"rounds": True}, TypeError, "rounds must be an int, got bool"),
    ],
)
def test_tune_rejects_bad_arguments_and_changes_nothing(tmp_path, monkeypatch, arguments,
                                                         error, message):
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(tmp_path))
    before = lk._dispatch.kernels.get_configuration()
    with pytest.raises(error, match=message):
        lk.tune(progress=None, **arguments)
    assert lk._dispatch.kernels.get_configuration() == before
    assert not (tmp_path / "wisdom.json").exists()


def test_no_call_fits_while_fitting_is_paused(fitting):
    x = np.ones(1 << 18, np.float32)
    with _tuning.fitting_paused():
        lk.leaky_relu(x)
        assert fitting == []
    lk.leaky_relu(x)
    assert fitting == [_tuning.current_mode()]


def test_a_skipped_fit_says_so_after_the_tuning_is_applied_again(fitting, monkeypatch):
    def busy(mode):
        fitting.append(mode)
        raise _tuning.MachineBusy("rounds of one measurement differed by 30%")

    monkeypatch.setattr(_tuning, "fit", busy)
    lk.leaky_relu(np.ones(1 << 18, np.float32))
    lk.set_tuning()
    name = _tuning.route("forward", "out", fitting[0])
    assert lk.get_tuning()["plans"][1][name] == (
        "default rule (fitting skipped: rounds of one measurement differed by 30%)")
