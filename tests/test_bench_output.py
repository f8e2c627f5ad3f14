"""bench/run.py's output for people: the load warning, --check's exit status,
and where the plots draw the roofline. The timings themselves are stubbed:
speed targets live in the benchmarks, never in unit tests."""
import pathlib
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
if not BENCH.is_dir():
    pytest.skip("bench/ is not beside the tests", allow_module_level=True)
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import targets  # noqa: E402


def _targets(passing):
    seconds = {"leaky_kernel": 1.0 if passing else 2.0, "roofline": 1.0}
    return [targets.TargetResult("stub", "leaky_kernel", "roofline", "<=", 1.1, seconds)]


@pytest.fixture
def stub_targets(monkeypatch):
    def use(passing):
        monkeypatch.setattr(targets, "run_targets", lambda settings, progress=None: _targets(passing))
    return use


def test_check_exits_1_when_a_target_fails(stub_targets, tmp_path, capsys):
    stub_targets(passing=False)
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--only-targets", "--check", "--output", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "FAIL" in capsys.readouterr().out


def test_check_returns_normally_when_every_target_passes(stub_targets, tmp_path):
    stub_targets(passing=True)
    run.main(["--only-targets", "--check", "--output", str(tmp_path)])


def test_without_check_a_failing_target_does_not_change_the_exit(stub_targets, tmp_path):
    stub_targets(passing=False)
    run.main(["--only-targets", "--output", str(tmp_path)])


@pytest.mark.parametrize("load, warned", [((0.9, 0.5, 0.5), True), ((0.2, 3.0, 3.0), False)])
def test_warns_when_the_load_average_is_above_half(load, warned, stub_targets, tmp_path,
                                                   monkeypatch, capsys):
    stub_targets(passing=True)
    monkeypatch.setattr(report, "load_average", lambda: load)
    run.main(["--only-targets", "--output", str(tmp_path)])
    assert ("warning: load average" in capsys.readouterr().err) is warned


def test_roofline_only_out_of_cache():
    l3 = 32 << 20
    forward = lambda log2: harness.Cell(1 << log2, "float32", "forward", "out")  # noqa: E731
    assert not report.out_of_cache(forward(22), l3)   # 32 MiB moved: could sit in cache
    assert report.out_of_cache(forward(23), l3)       # 64 MiB moved: twice the cache
    assert not report.out_of_cache(forward(26), None)  # unknown caches: nowhere
