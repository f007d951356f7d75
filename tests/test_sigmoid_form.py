"""The sigmoid's two forms (through exp, through tanh), the once-per-process choice between them,
and the environment variable that fixes it."""

import threading
import time

import numpy as np
import pytest

from convlstm.functional import activations


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("function", [activations._sigmoid_exp, activations._sigmoid_tanh])
def test_both_forms_are_the_sigmoid(function, dtype):
    x = np.linspace(-120, 120, 20001).astype(dtype)
    exact = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    y = function(x)
    assert y.dtype == dtype
    tolerance = 1.2e-7 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(y, exact.astype(np.float64), rtol=0, atol=tolerance)
    out = np.empty_like(x)
    assert function(x, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_the_choice_is_made_once_and_the_environment_overrides_it(monkeypatch):
    monkeypatch.delenv("CONVLSTM_SIGMOID", raising=False)
    monkeypatch.setattr(activations, "_sigmoid_choice", [])
    chosen = activations.sigmoid_form()
    assert chosen in ("exp", "tanh") and activations._sigmoid_choice == [chosen]
    assert activations.sigmoid_form() == chosen
    for form in ("exp", "tanh"):
        monkeypatch.setenv("CONVLSTM_SIGMOID", form)
        assert activations.sigmoid_form() == form
        x = np.linspace(-5, 5, 11)
        expected = (activations._sigmoid_exp if form == "exp" else activations._sigmoid_tanh)(x)
        np.testing.assert_array_equal(activations.ACTIVATIONS["sigmoid"](x), expected)


def test_threads_asking_at_once_share_one_timing(monkeypatch):
    """Sample groups reach their first sigmoid together: one thread times the forms, every
    thread gets its answer."""
    monkeypatch.delenv("CONVLSTM_SIGMOID", raising=False)
    monkeypatch.setattr(activations, "_sigmoid_choice", [])
    timings, answers = [], []
    faster = activations._faster_sigmoid

    def timed():
        timings.append(None)
        time.sleep(0.05)  # long enough for every thread to arrive while the first times
        return faster()

    monkeypatch.setattr(activations, "_faster_sigmoid", timed)
    workers = [threading.Thread(target=lambda: answers.append(activations.sigmoid_form()))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(timings) == 1 and len(answers) == 4 and len(set(answers)) == 1
    assert activations._sigmoid_choice == answers[:1]
