"""The tuning (_tuning.py): where each choice comes from, and that every
choice computes the same bits. Nothing here measures speed."""

import json
import textwrap

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import _tuning, reference
from leaky_kernel._dispatch import LEVELS, load
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
            mask = np.empty((x.size + 7) // 8, np.uint8)
            level_kernels.forward_mask[name](x, y, mask, 0.3, n_threads, True)
            assert bits_equal(y, reference.leaky_relu(x, 0.3))
            level_kernels.backward_mask[name](g, mask, y, 0.3, n_threads, False)
            assert bits_equal(y, reference.leaky_relu_backward(g, x, 0.3))


@pytest.mark.parametrize("min_thread_elements", [1, 100, 1 << 14, 1 << 40])
def test_any_serial_cutoff_computes_the_oracle(min_thread_elements):
    x = random_operand(np.random.default_rng(1), 5 * 1024 + 3, np.float32)
    with kernel_choices(lk._dispatch.kernels, min_thread_elements=min_thread_elements):
        assert bits_equal(lk.leaky_relu(x, -2.0, num_threads=2), reference.leaky_relu(x, -2.0))


def test_set_tuning_overrides_and_says_so():
    try:
        lk.set_tuning(prefetch="t0", stream_fresh_min_bytes=123)
        tuning = lk.get_tuning()
        assert tuning["prefetch"] == ("t0", "set by set_tuning()")
        assert tuning["stream_fresh_min_bytes"] == (123, "set by set_tuning()")
        assert tuning["stream_out_min_bytes"][1].startswith("default")
    finally:
        lk.set_tuning()
    assert lk.get_tuning()["prefetch"] == ("none", "default (no wisdom for this machine)")


@pytest.mark.parametrize(
    "choices, error, message",
    [
        ({"prefetch": "t1"}, ValueError, "prefetch must be one of"),
        ({"streaming": 1}, TypeError, "unknown tuning choice 'streaming'"),
        ({"stream_out_min_bytes": -1}, ValueError, "stream_out_min_bytes must be an int from 0"),
        ({"min_thread_elements": 0}, ValueError, "min_thread_elements must be an int from 1"),
        ({"prefetch_bytes": 1.5}, TypeError, "prefetch_bytes must be an int"),
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
    assert tuning["prefetch"] == ["nta", "set by LEAKY_KERNEL_TUNING"]
    assert tuning["stream_out_min_bytes"] == [_tuning.NEVER, "set by LEAKY_KERNEL_TUNING"]


def test_a_bad_environment_variable_warns_and_is_ignored(run_python, tmp_path):
    tuning, stderr = show_tuning(run_python, LEAKY_KERNEL_TUNING="prefetch=fast",
                                 LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    assert "LEAKY_KERNEL_TUNING ignored: prefetch must be one of" in stderr
    assert tuning["prefetch"] == ["none", "default (no wisdom for this machine)"]


def test_wisdom_is_read_at_import_for_this_machine_only(run_python, tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(tmp_path))
    entry = {"choices": {"prefetch": "t0", "min_thread_elements": 4096},
             "why": {"prefetch": "t0 won"}, "date": "2026-01-02"}
    _tuning.write_wisdom(entry)
    wisdom = json.loads((tmp_path / "wisdom.json").read_text())
    wisdom["another CPU"] = {"choices": {"prefetch": "nta"}}
    (tmp_path / "wisdom.json").write_text(json.dumps(wisdom))
    tuning, _ = show_tuning(run_python, LEAKY_KERNEL_TUNING="", LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    assert tuning["prefetch"] == ["t0", "measured by `tune` on 2026-01-02: t0 won"]
    assert tuning["min_thread_elements"] == [4096, "measured by `tune` on 2026-01-02"]
    assert tuning["stream_out_min_bytes"][1].startswith("default")
    # "default" ignores the wisdom.
    tuning, _ = show_tuning(run_python, LEAKY_KERNEL_TUNING="default",
                            LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    assert tuning["prefetch"][0] == "none"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"%s": {"choices": {"prefetch": 7}}}'])
def test_unreadable_wisdom_falls_back_to_the_defaults(run_python, tmp_path, content):
    (tmp_path / "wisdom.json").write_text(content.replace("%s", _tuning.machine_key()))
    tuning, stderr = show_tuning(run_python, LEAKY_KERNEL_TUNING="",
                                 LEAKY_KERNEL_CACHE_DIR=str(tmp_path))
    assert tuning["prefetch"] == ["none", "default (no wisdom for this machine)"]


def test_tune_measures_stores_and_applies_its_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY_KERNEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("LEAKY_KERNEL_TUNING")
    before = lk._dispatch.kernels.get_configuration()
    try:
        entry = lk.tune(rounds=1, size_mib=4, progress=None)
        assert set(entry["choices"]) == set(_tuning.DEFAULTS)
        assert _tuning.check_choices(entry["choices"]) == entry["choices"]
        assert _tuning.read_wisdom()["choices"] == entry["choices"]
        for name, (value, why) in lk.get_tuning().items():
            assert value == entry["choices"][name]
            assert why.startswith("measured by `tune` on ")
    finally:
        monkeypatch.setenv("LEAKY_KERNEL_TUNING", "default")
        _tuning.apply()
    assert lk._dispatch.kernels.get_configuration() == before


def test_a_cutoff_needs_a_win_by_the_margin_at_every_larger_size():
    mib, never = _tuning.MIB, _tuning.NEVER
    ratios = {2: 0.5, 4: 0.95, 8: 0.6}
    assert _tuning._cutoff(ratios, 0.97) == 2 * mib
    assert _tuning._cutoff(ratios, 0.90) == 8 * mib
    assert _tuning._cutoff({2: 0.5, 4: 0.98}, 0.97) == never


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
