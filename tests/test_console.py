"""The command line's progress bar: labelled metrics, no carriage-return litter in logs."""

import io
import sys

import pytest

from convlstm.console import ProgressBar, duration


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _run(bar, steps):
    for step in range(steps):
        bar.on_batch_end(step, {"loss": 0.5 / (step + 1), "mae": 0.25})
    bar.close()


def test_a_log_file_gets_whole_labelled_lines_every_tenth_of_the_way():
    stream = io.StringIO()
    _run(ProgressBar(20, stream, loss_name="bce"), 20)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 10
    assert lines[-1].startswith("step 20/20 [####################] bce 0.0250  mae 0.2500")
    assert lines[0].startswith("step 2/20 [##..................] bce 0.2500  mae 0.2500")


def test_a_terminal_without_tqdm_redraws_one_cleared_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    stream = Terminal()
    bar = ProgressBar(3, stream)
    assert bar.bar is None
    _run(bar, 2)  # stopped early: close ends the line
    text = stream.getvalue()
    assert text.count("\r\x1b[K") == 2 and text.endswith("left\n")
    assert "step 2/3 [#############.......] loss 0.2500  mae 0.2500" in text


def test_a_terminal_with_tqdm_gets_a_tqdm_bar_with_the_metrics():
    stream = Terminal()
    bar = ProgressBar(4, stream, loss_name="bce")
    assert bar.bar is not None
    _run(bar, 4)
    final = stream.getvalue().split("\r")[-1]
    assert "4/4" in final and "bce=0.1250" in final and "mae=0.2500" in final


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42s"), (65, "1m05s"), (0, "0s")])
def test_duration(seconds, text):
    assert duration(seconds) == text
