"""The sigmoid's two forms (through exp, through tanh), the once-per-process choice between them,
and the environment variable that fixes it."""

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
