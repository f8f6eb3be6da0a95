"""The progress line."""

import io

from common import progress


def test_duration_format():
    assert progress.format_duration(0) == "0:00:00"
    assert progress.format_duration(3725) == "1:02:05"


def test_line_names_phase_count_rate_and_values():
    out = io.StringIO()
    bar = progress.Progress("maml", total=100, stream=out)
    line = bar.update(50, loss=0.25)
    assert line.startswith("[maml] 50/100 (50%) ")
    assert (" it/s ETA " in line or " s/it ETA " in line) and line.endswith("loss=0.25")
    assert out.getvalue().strip() == line


def test_rate_reads_as_seconds_per_iteration_below_one_per_second():
    assert progress.format_rate(250.0) == "250 it/s"
    assert progress.format_rate(2.0) == "2.0 it/s"
    assert progress.format_rate(1 / 2.4) == "2.4 s/it"  # not "0 it/s"
    assert progress.format_rate(0.0) == "0 it/s"
