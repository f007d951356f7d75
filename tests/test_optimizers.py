"""Optimizers: Keras 3 trajectories, the in-place contract, schedules, convergence, errors."""

from pathlib import Path

import numpy as np
import pytest

from convlstm import optimizers
from convlstm.optimizers import SGD, Adam, AdamW, ExponentialDecay, Optimizer, RMSprop

PARAMS = {"a": [[0.5, -1.0], [1.5, 2.0]], "b": [0.25, -0.75]}
GRADS = [
    {"a": [[0.3, -0.6], [0.9, 1.2]], "b": [-0.4, 0.8]},
    {"a": [[-0.2, 0.5], [0.7, -1.1]], "b": [0.6, 0.1]},
    {"a": [[0.4, 0.3], [-0.8, 0.2]], "b": [-0.9, -0.3]},
    {"a": [[0.01, -0.02], [0.0, 0.03]], "b": [0.02, -0.01]},
]


def fresh(dtype="float32"):
    return {key: np.array(value, dtype) for key, value in PARAMS.items()}


def grads_at(step, dtype="float32"):
    return {key: np.array(value, dtype) for key, value in GRADS[step].items()}


def flat(params):
    return np.concatenate([params["a"].ravel(), params["b"].ravel()])


# Keras 3.15.1 (torch backend, float32) trajectories, made by scripts/make_golden_fixtures.py:
# the same optimizer built with keras.optimizers, then keras_optimizer.apply(GRADS[step],
# variables) for each step; row k of GOLDEN[name] is [*a.ravel(), *b.ravel()] after step k.
# The last step's small gradients make AMSGrad's running maximum differ from Adam's velocity.
GOLDEN = np.load(Path(__file__).parent / "fixtures" / "golden" / "optimizers.npz")
OPTIMIZERS = {
    "sgd": lambda: SGD(learning_rate=0.1),
    "sgd_momentum": lambda: SGD(learning_rate=0.1, momentum=0.9),
    "sgd_nesterov": lambda: SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "sgd_weight_decay": lambda: SGD(learning_rate=0.1, weight_decay=0.5),
    "sgd_clipnorm": lambda: SGD(learning_rate=0.1, clipnorm=0.5),
    "sgd_global_clipnorm": lambda: SGD(learning_rate=0.1, global_clipnorm=0.7),
    "sgd_clipvalue": lambda: SGD(learning_rate=0.1, clipvalue=0.25),
    "sgd_exponential_decay": (
        lambda: SGD(learning_rate=ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5))
    ),
    "rmsprop": lambda: RMSprop(learning_rate=0.01),
    "rmsprop_centered": lambda: RMSprop(learning_rate=0.01, centered=True),
    "rmsprop_momentum": lambda: RMSprop(learning_rate=0.01, momentum=0.8),
    "rmsprop_centered_momentum": lambda: RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    "adam": lambda: Adam(learning_rate=0.01),
    "adam_amsgrad": lambda: Adam(learning_rate=0.01, beta_2=0.5, amsgrad=True),
    "adam_beta_2": lambda: Adam(learning_rate=0.01, beta_2=0.5),
    "adamw": lambda: AdamW(learning_rate=0.01, weight_decay=0.1),
}
KERAS_TRAJECTORIES = {name: (make, GOLDEN[name]) for name, make in OPTIMIZERS.items()}


def test_golden_fixture_inputs_are_these():
    assert set(GOLDEN.files) == {*OPTIMIZERS, "params_a", "params_b", "grads_a", "grads_b"}
    for key in PARAMS:
        np.testing.assert_array_equal(GOLDEN[f"params_{key}"], fresh()[key])
        np.testing.assert_array_equal(
            GOLDEN[f"grads_{key}"], [grads_at(step)[key] for step in range(len(GRADS))]
        )

@pytest.mark.parametrize("name", list(KERAS_TRAJECTORIES))
def test_trajectory_matches_keras(name):
    make, expected = KERAS_TRAJECTORIES[name]
    optimizer, params = make(), fresh()
    for step, row in enumerate(expected):
        optimizer.apply(params, grads_at(step))
        assert params["a"].dtype == np.float32
        np.testing.assert_allclose(flat(params), row, rtol=0, atol=1e-6, err_msg=f"step {step}")
    assert optimizer.iterations == len(expected)


@pytest.mark.parametrize("name", list(KERAS_TRAJECTORIES))
def test_float64_follows_the_same_trajectory_in_float64(name):
    make, expected = KERAS_TRAJECTORIES[name]
    optimizer, params = make(), fresh("float64")
    for step in range(len(expected)):
        optimizer.apply(params, grads_at(step, "float64"))
    assert all(param.dtype == np.float64 for param in params.values())
    assert all(
        slot.dtype == np.float64 for slots in optimizer.state.values() for slot in slots.values()
    )
    np.testing.assert_allclose(flat(params), expected[-1], rtol=0, atol=1e-6)


def test_state_is_per_key_with_the_param_shape_and_dtype():
    optimizer = Adam(amsgrad=True)
    optimizer.apply(fresh(), grads_at(0))
    assert set(optimizer.state) == {"a", "b"}
    for key, slots in optimizer.state.items():
        assert set(slots) == {"momentum", "velocity", "velocity_hat"}
        for slot in slots.values():
            assert slot.shape == np.shape(PARAMS[key])
            assert slot.dtype == np.float32


def test_plain_sgd_keeps_no_state():
    optimizer = SGD()
    optimizer.apply(fresh(), grads_at(0))
    assert optimizer.state == {}


def test_updates_in_place():
    params = fresh()
    arrays = dict(params)
    Adam(learning_rate=0.1).apply(params, grads_at(0))
    assert all(params[key] is arrays[key] for key in params)
    assert not np.allclose(flat(params), flat(fresh()))


@pytest.mark.parametrize(
    "optimizer",
    [
        SGD(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        SGD(learning_rate=0.1, clipnorm=0.5),
        SGD(learning_rate=0.1, global_clipnorm=0.7),
        SGD(learning_rate=0.1, clipvalue=0.25),
        RMSprop(centered=True, momentum=0.5),
        Adam(amsgrad=True),
        AdamW(),
    ],
    ids=repr,
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grads_are_never_modified(optimizer, dtype):
    optimizer = type(optimizer).from_config(optimizer.get_config())  # no state from other runs
    params = fresh()
    for step in range(3):
        grads = grads_at(step, dtype)
        copies = {key: grad.copy() for key, grad in grads.items()}
        for grad in grads.values():
            grad.flags.writeable = False
        optimizer.apply(params, grads)
        for key, grad in grads.items():
            np.testing.assert_array_equal(grad, copies[key])


def test_clipping_by_hand():
    params = {"w": np.zeros(2), "v": np.zeros(1)}
    grads = {"w": np.array([3.0, 4.0]), "v": np.array([12.0])}
    SGD(learning_rate=1.0, clipnorm=1.0).apply(params, grads)
    np.testing.assert_allclose(params["w"], [-0.6, -0.8])
    np.testing.assert_allclose(params["v"], [-1.0])
    params = {"w": np.zeros(2), "v": np.zeros(1)}
    SGD(learning_rate=1.0, global_clipnorm=6.5).apply(params, grads)  # global norm 13
    np.testing.assert_allclose(params["w"], [-1.5, -2.0])
    np.testing.assert_allclose(params["v"], [-6.0])
    params = {"w": np.zeros(2), "v": np.zeros(1)}
    SGD(learning_rate=1.0, clipvalue=3.5).apply(params, grads)
    np.testing.assert_allclose(params["w"], [-3.0, -3.5])
    np.testing.assert_allclose(params["v"], [-3.5])


def test_schedule_is_called_with_the_number_of_updates_so_far():
    steps = []

    def schedule(step):
        steps.append(step)
        return 0.1 * (step + 1)

    optimizer = SGD(learning_rate=schedule)
    params = {"w": np.zeros(1)}
    for _ in range(3):
        optimizer.apply(params, {"w": np.ones(1)})
    assert steps == [0, 1, 2]
    assert optimizer.iterations == 3
    np.testing.assert_allclose(params["w"], [-(0.1 + 0.2 + 0.3)])
    assert optimizer.current_learning_rate == pytest.approx(0.4)


def test_weight_decay_uses_the_scheduled_rate():
    optimizer = SGD(
        learning_rate=ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5), weight_decay=1
    )
    params = {"w": np.array([8.0])}
    for _ in range(2):
        optimizer.apply(params, {"w": np.zeros(1)})
    np.testing.assert_allclose(params["w"], [8.0 * (1 - 0.5) * (1 - 0.25)])


def test_exponential_decay():
    smooth = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    stairs = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert smooth(0) == pytest.approx(0.1)
    assert smooth(15) == pytest.approx(0.1 * 0.5**1.5)
    assert stairs(15) == pytest.approx(0.05)
    assert stairs(20) == pytest.approx(0.025)
    assert ExponentialDecay(**smooth.get_config()).get_config() == smooth.get_config()
    assert repr(stairs).startswith("ExponentialDecay(initial_learning_rate=0.1,")


def test_iterations_count_apply_calls():
    optimizer = RMSprop()
    assert optimizer.iterations == 0
    params = fresh()
    for step in range(3):
        optimizer.apply(params, grads_at(step))
    assert optimizer.iterations == 3


SCALES = np.array([1.0, 0.5, 2.0])


@pytest.mark.parametrize(
    "optimizer",
    [
        SGD(learning_rate=0.1),
        SGD(learning_rate=0.05, momentum=0.9),
        SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
        RMSprop(learning_rate=ExponentialDecay(0.1, decay_steps=50, decay_rate=0.5)),
        RMSprop(
            learning_rate=ExponentialDecay(0.1, decay_steps=50, decay_rate=0.5),
            momentum=0.5,
            centered=True,
        ),
        Adam(learning_rate=0.05),
        Adam(learning_rate=0.05, amsgrad=True),
        AdamW(learning_rate=0.05),
    ],
    ids=repr,
)
def test_minimises_a_quadratic(optimizer):
    params = {"w": np.array([1.0, -2.0, 3.0])}
    for _ in range(300):
        optimizer.apply(params, {"w": 2 * SCALES * params["w"]})
    assert np.sum(SCALES * params["w"] ** 2) < 1e-4


CONFIGURED = [
    SGD(learning_rate=0.2, momentum=0.5, nesterov=True, clipnorm=1.0),
    SGD(learning_rate=ExponentialDecay(0.1, 5, 0.9, staircase=True), weight_decay=0.01),
    RMSprop(learning_rate=0.01, rho=0.8, momentum=0.3, epsilon=1e-6, centered=True, clipvalue=2),
    Adam(learning_rate=0.002, beta_1=0.8, beta_2=0.99, epsilon=1e-8, amsgrad=True),
    AdamW(learning_rate=0.003, weight_decay=0.1, global_clipnorm=5.0),
]


@pytest.mark.parametrize("optimizer", CONFIGURED, ids=repr)
def test_config_round_trip(optimizer):
    config = optimizer.get_config()
    rebuilt = type(optimizer).from_config(config)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(optimizer)
    assert rebuilt.iterations == 0 and rebuilt.state == {}


def test_config_writes_a_schedule_as_keras_does():
    config = SGD(learning_rate=ExponentialDecay(0.1, 5, 0.9)).get_config()
    assert config["learning_rate"] == {
        "class_name": "ExponentialDecay",
        "config": {
            "initial_learning_rate": 0.1,
            "decay_steps": 5,
            "decay_rate": 0.9,
            "staircase": False,
        },
    }


def test_config_defaults_are_keras_defaults():
    assert SGD().get_config() == {
        "learning_rate": 0.01,
        "weight_decay": None,
        "clipnorm": None,
        "global_clipnorm": None,
        "clipvalue": None,
        "momentum": 0.0,
        "nesterov": False,
    }
    rmsprop = RMSprop().get_config()
    assert (rmsprop["learning_rate"], rmsprop["rho"], rmsprop["epsilon"]) == (0.001, 0.9, 1e-7)
    adam = Adam().get_config()
    assert (adam["beta_1"], adam["beta_2"], adam["epsilon"], adam["amsgrad"]) == (
        0.9,
        0.999,
        1e-7,
        False,
    )
    assert AdamW().get_config()["weight_decay"] == 0.004


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sgd", SGD), ("RMSprop", RMSprop), ("ADAM", Adam), ("adamw", AdamW), ("AdamW", AdamW)],
)
def test_get_by_name(name, cls):
    optimizer = optimizers.get(name)
    assert type(optimizer) is cls
    assert optimizer.get_config() == cls().get_config()


def test_get_passes_instances_through_and_rejects_others():
    optimizer = Adam(learning_rate=0.5)
    assert optimizers.get(optimizer) is optimizer
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad'; expected one of 'sgd', "):
        optimizers.get("adagrad")
    with pytest.raises(TypeError, match=r"optimizers.get: expected an optimizer name"):
        optimizers.get(3)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: SGD(learning_rate=-1),
            ValueError,
            r"SGD: expected learning_rate to be a positive float or a callable schedule\(step\); "
            r"got -1\.",
        ),
        (lambda: Adam(learning_rate="fast"), TypeError, r"Adam: expected learning_rate"),
        (
            lambda: SGD(momentum=1.0),
            ValueError,
            r"SGD: expected momentum to be a float in \[0, 1\)",
        ),
        (lambda: SGD(momentum=-0.1), ValueError, r"SGD: expected momentum"),
        (lambda: SGD(nesterov=1), TypeError, r"SGD: expected nesterov to be True or False; got 1"),
        (lambda: RMSprop(rho=1.5), ValueError, r"RMSprop: expected rho to be a float in \[0, 1\)"),
        (lambda: RMSprop(epsilon=0), ValueError, r"RMSprop: expected epsilon to be a positive"),
        (lambda: RMSprop(centered="yes"), TypeError, r"RMSprop: expected centered to be True"),
        (lambda: Adam(beta_1=-0.5), ValueError, r"Adam: expected beta_1 to be a float in"),
        (lambda: Adam(beta_2=True), TypeError, r"Adam: expected beta_2 to be a float in"),
        (lambda: AdamW(beta_2=1.0), ValueError, r"AdamW: expected beta_2 to be a float in"),
        (lambda: AdamW(weight_decay=None), ValueError, r"AdamW: expected weight_decay to be a"),
        (lambda: SGD(weight_decay=-0.1), ValueError, r"SGD: expected weight_decay to be None or"),
        (lambda: SGD(clipnorm=0), ValueError, r"SGD: expected clipnorm to be None or a positive"),
        (lambda: Adam(clipvalue="1"), TypeError, r"Adam: expected clipvalue to be None or a"),
        (
            lambda: SGD(clipnorm=1.0, clipvalue=1.0),
            ValueError,
            r"SGD: expected at most one of clipnorm, global_clipnorm and clipvalue; got "
            r"clipnorm=1.0, global_clipnorm=None, clipvalue=1.0\.",
        ),
        (
            lambda: ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5),
            ValueError,
            r"ExponentialDecay: expected decay_steps to be a positive int; got 0\.",
        ),
        (
            lambda: ExponentialDecay(-0.1, decay_steps=10, decay_rate=0.5),
            ValueError,
            r"ExponentialDecay: expected initial_learning_rate to be a positive float",
        ),
        (
            lambda: SGD.from_config({"learning_rate": {"class_name": "CosineDecay", "config": {}}}),
            ValueError,
            r"SGD.from_config: expected a learning_rate schedule of class ExponentialDecay; "
            r"got 'CosineDecay'\.",
        ),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("params", "grads", "error", "message"),
    [
        (
            {"a": np.zeros(2), "b": np.zeros(1)},
            {"a": np.zeros(2), "c": np.zeros(1)},
            ValueError,
            r"Adam.apply: expected grads with the same keys as params; got grads missing \['b'\] "
            r"and with unexpected \['c'\]\.",
        ),
        (
            {"a": np.zeros((2, 3))},
            {"a": np.zeros(3)},
            ValueError,
            r"Adam.apply: expected grads\['a'\] of shape \(2, 3\); got \(3,\)\.",
        ),
        (
            {"a": np.zeros(2, dtype=int)},
            {"a": np.zeros(2)},
            TypeError,
            r"Adam.apply: expected params\['a'\] to be a float32 or float64 NumPy array; "
            r"got int64\.",
        ),
        (
            {"a": [0.0, 1.0]},
            {"a": np.zeros(2)},
            TypeError,
            r"expected params\['a'\] to be a float32 or float64 NumPy array; got list\.",
        ),
        (
            {"a": np.zeros(2)},
            {"a": np.zeros(2, dtype=complex)},
            TypeError,
            r"Adam.apply: expected grads\['a'\] to be a real numeric array",
        ),
        (
            [np.zeros(2)],
            {"a": np.zeros(2)},
            TypeError,
            r"Adam.apply: expected params to be a dict of arrays; got list\.",
        ),
    ],
)
def test_bad_apply_arguments(params, grads, error, message):
    optimizer = Adam()
    with pytest.raises(error, match=message):
        optimizer.apply(params, grads)
    assert optimizer.iterations == 0
    assert optimizer.state == {}


def test_a_failed_apply_changes_nothing():
    optimizer = SGD(learning_rate=0.1)
    params = {"a": np.ones(2), "b": np.ones(3)}
    with pytest.raises(ValueError, match=r"grads\['b'\] of shape \(3,\)"):
        optimizer.apply(params, {"a": np.ones(2), "b": np.ones(2)})
    np.testing.assert_array_equal(params["a"], np.ones(2))


def test_a_param_that_changes_shape_is_rejected():
    optimizer = SGD(momentum=0.5)
    optimizer.apply({"a": np.zeros(2)}, {"a": np.ones(2)})
    with pytest.raises(
        ValueError,
        match=r"SGD.apply: expected params\['a'\] of shape \(2,\), as when its state was made; "
        r"got \(3,\)\.",
    ):
        optimizer.apply({"a": np.zeros(3)}, {"a": np.ones(3)})


def test_optimizer_is_abstract():
    with pytest.raises(TypeError):
        Optimizer(0.1)


def test_state_arrays_let_a_new_optimizer_continue_exactly():
    rng = np.random.default_rng(0)
    first, second = Adam(0.01, amsgrad=True), Adam(0.01, amsgrad=True)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(4)]
    for step in grads[:3]:
        first.apply(params, step)
    resumed = {k: v.copy() for k, v in params.items()}
    saved = first.state_arrays()
    assert int(saved["iterations"]) == 3
    assert {"w::momentum", "b::velocity", "b::velocity_hat"} <= set(saved)
    second.load_state_arrays(saved)
    first.apply(params, grads[3])
    second.apply(resumed, grads[3])
    for key in params:
        np.testing.assert_array_equal(resumed[key], params[key])
