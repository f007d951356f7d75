"""Optimizers: Keras 3 trajectories, the in-place contract, schedules, convergence, errors."""

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


# Golden numbers from Keras 3.15.1 (torch backend, float32): the same optimizer built with
# keras.optimizers, then keras_optimizer.apply(GRADS[step], variables) for each step; each row is
# [*a.ravel(), *b.ravel()] after that step. The last step's small gradients make AMSGrad's
# running maximum differ from Adam's velocity.
KERAS_TRAJECTORIES = {
    "sgd": (
        lambda: SGD(learning_rate=0.1),
        [
            [0.47, -0.94, 1.41, 1.88, 0.28999999, -0.82999998],
            [0.49000001, -0.99000001, 1.3399999, 1.99, 0.22999999, -0.83999997],
            [0.45000002, -1.02, 1.42, 1.97, 0.31999999, -0.80999994],
            [0.44900003, -1.018, 1.42, 1.967, 0.31799999, -0.80899996],
        ],
    ),
    "sgd_momentum": (
        lambda: SGD(learning_rate=0.1, momentum=0.9),
        [
            [0.47, -0.94, 1.41, 1.88, 0.28999999, -0.82999998],
            [0.463, -0.93599999, 1.2589999, 1.882, 0.266, -0.912],
            [0.41670001, -0.96240002, 1.2031, 1.8637999, 0.3344, -0.9558],
            [0.37402999, -0.98416001, 1.15279, 1.84442, 0.39396, -0.99422002],
        ],
    ),
    "sgd_nesterov": (
        lambda: SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
        [
            [0.44299999, -0.88599998, 1.329, 1.772, 0.32600001, -0.90200001],
            [0.4567, -0.93239999, 1.1230999, 1.8838, 0.24440001, -0.98580003],
            [0.37503001, -0.98616004, 1.15279, 1.8474201, 0.39596, -0.99522001],
            [0.33562702, -1.003744, 1.1075109, 1.8269781, 0.44756401, -1.028798],
        ],
    ),
    "sgd_weight_decay": (
        lambda: SGD(learning_rate=0.1, weight_decay=0.5),
        [
            [0.44499999, -0.88999999, 1.3349999, 1.78, 0.2775, -0.79249996],
            [0.44275001, -0.8955, 1.1982498, 1.801, 0.20362499, -0.76287496],
            [0.38061252, -0.88072503, 1.2183373, 1.69095, 0.28344375, -0.69473118],
            [0.3605819, -0.83468878, 1.1574204, 1.6034025, 0.26727155, -0.65899462],
        ],
    ),
    "sgd_clipnorm": (
        lambda: SGD(learning_rate=0.1, clipnorm=0.5),
        [
            [0.49087128, -0.98174256, 1.4726138, 1.9634851, 0.27236068, -0.79472136],
            [0.49796009, -0.99946457, 1.447803, 2.0024736, 0.22304098, -0.80294132],
            [0.47722104, -1.0150188, 1.4892811, 1.9921041, 0.27047515, -0.78712994],
            [0.47622105, -1.0130188, 1.4892811, 1.989104, 0.26847515, -0.78612995],
        ],
    ),
    "sgd_global_clipnorm": (
        lambda: SGD(learning_rate=0.1, global_clipnorm=0.7),
        [
            [0.48877501, -0.97755003, 1.466325, 1.9551001, 0.26496664, -0.77993327],
            [0.49788824, -1.0003331, 1.4344288, 2.0052228, 0.23762697, -0.78448987],
            [0.47719005, -1.0158567, 1.4758252, 1.9948736, 0.2841979, -0.7689662],
            [0.47619006, -1.0138568, 1.4758252, 1.9918736, 0.28219789, -0.76796621],
        ],
    ),
    "sgd_clipvalue": (
        lambda: SGD(learning_rate=0.1, clipvalue=0.25),
        [
            [0.47499999, -0.97500002, 1.475, 1.975, 0.27500001, -0.77499998],
            [0.495, -1, 1.45, 2, 0.25, -0.78499997],
            [0.47, -1.025, 1.475, 1.98, 0.27500001, -0.75999999],
            [0.46900001, -1.023, 1.475, 1.977, 0.273, -0.759],
        ],
    ),
    "sgd_exponential_decay": (
        lambda: SGD(learning_rate=ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)),
        [
            [0.47, -0.94, 1.41, 1.88, 0.28999999, -0.82999998],
            [0.48414212, -0.97535533, 1.3605025, 1.9577818, 0.24757358, -0.83707106],
            [0.46414211, -0.99035531, 1.4005024, 1.9477818, 0.29257357, -0.82207108],
            [0.46378857, -0.98964822, 1.4005024, 1.9467212, 0.29186645, -0.8217175],
        ],
    ),
    "rmsprop": (
        lambda: RMSprop(learning_rate=0.01),
        [
            [0.46837741, -0.96837729, 1.4683772, 1.9683772, 0.28162268, -0.78162277],
            [0.48655915, -0.98924685, 1.4483281, 1.9903508, 0.25489658, -0.78575373],
            [0.46216622, -1.0014275, 1.4675226, 1.9861764, 0.28021505, -0.77368009],
            [0.46152353, -1.0005718, 1.4675226, 1.9855164, 0.27962208, -0.77325588],
        ],
    ),
    "rmsprop_centered": (
        lambda: RMSprop(learning_rate=0.01, centered=True),
        [
            [0.46666688, -0.9666667, 1.4666667, 1.9666667, 0.28333321, -0.7833333],
            [0.48488554, -0.98753917, 1.4444304, 1.9886405, 0.25645307, -0.78772384],
            [0.45945802, -0.99979037, 1.4637998, 1.9844631, 0.28225368, -0.77545816],
            [0.45878974, -0.99893099, 1.4637998, 1.9838026, 0.28165126, -0.77502823],
        ],
    ),
    "rmsprop_momentum": (
        lambda: RMSprop(learning_rate=0.01, momentum=0.8),
        [
            [0.46837741, -0.96837729, 1.4683772, 1.9683772, 0.28162268, -0.78162277],
            [0.46126106, -0.96394867, 1.4230299, 1.9650526, 0.28019473, -0.81105191],
            [0.43117508, -0.97258639, 1.4059465, 1.9582185, 0.30437085, -0.82252163],
            [0.40646362, -0.97864091, 1.3922799, 1.9520912, 0.32311878, -0.8312732],
        ],
    ),
    "rmsprop_centered_momentum": (
        lambda: RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
        [
            [0.46666688, -0.9666667, 1.4666667, 1.9666667, 0.28333321, -0.7833333],
            [0.46821898, -0.97087252, 1.4277637, 1.9719739, 0.27311969, -0.80439049],
            [0.44356751, -0.98522663, 1.4276817, 1.97045, 0.29381353, -0.80265337],
            [0.43057349, -0.99154431, 1.4276407, 1.9690276, 0.30355802, -0.80135489],
        ],
    ),
    "adam": (
        lambda: Adam(learning_rate=0.01),
        [
            [0.49000016, -0.99000013, 1.4900001, 1.9900001, 0.25999984, -0.75999987],
            [0.48855498, -0.9896189, 1.4801421, 1.9900916, 0.25752285, -0.76757199],
            [0.48306063, -0.99163598, 1.477577, 1.9893821, 0.26131263, -0.77082741],
            [0.4784528, -0.99314874, 1.4754758, 1.9886948, 0.26431566, -0.77342623],
        ],
    ),
    "adam_amsgrad": (
        lambda: Adam(learning_rate=0.01, beta_2=0.5, amsgrad=True),
        [
            [0.49000001, -0.99000001, 1.49, 1.99, 0.25999999, -0.75999999],
            [0.48849595, -0.9896068, 1.4797114, 1.9900928, 0.25766772, -0.76660717],
            [0.48347348, -0.99157208, 1.4770948, 1.9894532, 0.26095766, -0.76927978],
            [0.47969794, -0.99289334, 1.4751738, 1.9888978, 0.26329437, -0.77119201],
        ],
    ),
    "adam_beta_2": (
        lambda: Adam(learning_rate=0.01, beta_2=0.5),
        [
            [0.49000001, -0.99000001, 1.49, 1.99, 0.25999999, -0.75999999],
            [0.48845235, -0.9896068, 1.4797114, 1.9900928, 0.25766772, -0.76920128],
            [0.48342988, -0.99194026, 1.4770948, 1.9892066, 0.26095766, -0.77343529],
            [0.47809312, -0.994156, 1.4743782, 1.988119, 0.26426098, -0.77771783],
        ],
    ),
    "adamw": (
        lambda: AdamW(learning_rate=0.01, weight_decay=0.1),
        [
            [0.48950016, -0.98900014, 1.4885001, 1.9880002, 0.25974986, -0.75924987],
            [0.48756549, -0.98762995, 1.4771537, 1.9861037, 0.25701311, -0.76606274],
            [0.48158357, -0.98865944, 1.4731114, 1.9834082, 0.26054588, -0.76855212],
            [0.47649416, -0.98918355, 1.4695371, 1.9807374, 0.26328838, -0.7703824],
        ],
    ),
}


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
