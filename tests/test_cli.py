"""The command line, driven as a user drives it: in a subprocess."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlstm.data import moving_shapes

SCRIPT = Path(sys.executable).parent / "convlstm"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "convlstm"]


def run(*arguments, cwd=None):
    return subprocess.run([*COMMAND, *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


TINY_DEMO = ["--dataset", "shapes", "--size", 12, "--frames", 4, "--sequences", 16, "--steps", 2,
             "--filters", 2, "--batch-size", 8, "--examples", 2]


def test_tiny_demo_writes_every_promised_file(tmp_path):
    result = run("demo", "--out", tmp_path / "demo", *TINY_DEMO)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "demo"
    names = {"predictions.png", "truth_vs_prediction.gif", "loss.png", "model.npz",
             "metrics.json"}
    assert names <= {p.name for p in out.iterdir()}
    for line in ("model ", "repeat last frame ", "mean frame "):
        assert line in result.stdout
    with Image.open(out / "predictions.png") as grid:
        # 3 rows per example of max(2 context, 2 future) columns, figsize (1.1*2, 3.3*2) at 100 dpi
        assert grid.size == (220, 660)
    with Image.open(out / "truth_vs_prediction.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (320, 340)
    with Image.open(out / "loss.png") as curve:
        assert curve.size == (600, 350)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["next_frame_mse"]) == {"model", "repeat_last_frame", "mean_frame"}
    assert metrics["steps"] == 2 and len(metrics["loss"]) == 2
    info = run("info", out / "model.npz")
    assert info.returncode == 0 and "ConvLSTM2D" in info.stdout and "Total params" in info.stdout


def test_quick_moving_mnist_demo_scores_the_model_and_both_baselines(tmp_path):
    from convlstm import datasets, demo, metrics

    result = run("demo", "--quick", "--steps", 3, "--test-sequences", 12, "--examples", 2,
                 "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "demo"
    names = {"forecast.png", "horizons.png", "forecast.gif", "loss.png", "model.npz",
             "metrics.json"}
    assert names <= {p.name for p in out.iterdir()}
    report = json.loads((out / "metrics.json").read_text())
    assert report["horizons"] == list(range(1, 11))
    assert set(report["methods"]) == {"model", "repeat_last_frame", "mean_frame"}
    test = datasets.moving_mnist(12, split="test", seed=demo.TEST_SEED)
    repeat = np.repeat(test[:, 9:10], 10, axis=1)
    np.testing.assert_allclose(report["methods"]["repeat_last_frame"]["mse_frame"],
                               metrics.mse(test[:, 10:], repeat), rtol=1e-6)
    np.testing.assert_allclose(report["methods"]["repeat_last_frame"]["ssim"],
                               metrics.ssim(test[:, 10:], repeat), rtol=1e-6)
    assert report["timings"]["steps"] == 3 and len(report["loss"]) == 3
    for line in ("frames ahead", "repeat last frame", "mean frame"):
        assert line in result.stdout
    with Image.open(out / "forecast.gif") as gif:
        assert gif.n_frames == 10


def test_pretrained_demo_scores_the_shipped_model_without_training(tmp_path):
    result = run("demo", "--pretrained", "--test-sequences", 12, "--examples", 1, "--out",
                 tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert "the pretrained forecaster" in result.stdout and "convlstm train" in result.stdout
    report = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert report["loss"] == [] and report["settings"]["pretrained"] is True
    model = report["methods"]["model"]
    assert all(m < r for m, r in zip(model["mse_frame"],
                                     report["methods"]["repeat_last_frame"]["mse_frame"]))
    refused = run("demo", "--pretrained", "--dataset", "shapes", "--out", tmp_path / "shapes")
    assert refused.returncode == 2 and "--pretrained" in refused.stderr


def test_train_moving_mnist_refuses_a_used_folder_and_resumes_with_the_optimizer(tmp_path):
    from convlstm import saving

    arguments = ["train", "--dataset", "moving-mnist", "--out", tmp_path / "run", "--filters",
                 2, "--layers", 1, "--batch-size", 2]
    first = run(*arguments, "--steps", 3)
    assert first.returncode == 0, first.stderr
    again = run(*arguments, "--steps", 3)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    resumed = run(*arguments, "--steps", 5, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after step 3" in resumed.stdout
    state = json.loads((tmp_path / "run" / "training.json").read_text())
    assert state["steps_done"] == 5 and state["rounds_done"] == 2
    with np.load(tmp_path / "run" / "optimizer.npz") as optimizer:
        assert int(optimizer["iterations"]) == 5
    model = saving.load(tmp_path / "run" / "model.npz")
    assert model.metadata["forecast"] == "direct" and model.metadata["steps"] == 5
    assert model.metadata["command"].startswith("convlstm train --dataset moving-mnist")
    info = run("info", tmp_path / "run" / "model.npz")
    assert info.returncode == 0 and "forecast: direct" in info.stdout
    assert "SpaceToDepth" in info.stdout and "steps: 5" in info.stdout


def test_train_then_predict_then_resume(tmp_path):
    sequences = (moving_shapes(6, 5, 10, 1, 1.0, seed=1)[..., 0] * 255).astype(np.uint8)
    np.save(tmp_path / "mnist_like.npy", sequences.swapaxes(0, 1))  # time-major, as Moving MNIST
    trained = run("train", "--data", tmp_path / "mnist_like.npy", "--time-axis", 0, "--out",
                  tmp_path / "run", "--epochs", 1, "--filters", 2, "--layers", 1,
                  "--batch-size", 4)
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "model.npz").exists()
    resumed = run("train", "--data", tmp_path / "mnist_like.npy", "--time-axis", 0, "--out",
                  tmp_path / "run", "--epochs", 2, "--filters", 2, "--layers", 1,
                  "--batch-size", 4, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1" in resumed.stdout
    assert json.loads((tmp_path / "run" / "training.json").read_text())["epochs_done"] == 2

    np.save(tmp_path / "one.npy", sequences[0, :3] / 255.0)  # one (T, H, W) sequence
    predicted = run("predict", "--model", tmp_path / "run" / "model.npz", "--input",
                    tmp_path / "one.npy", "--output", tmp_path / "future.npy", "--frames", 3)
    assert predicted.returncode == 0, predicted.stderr
    future = np.load(tmp_path / "future.npy")
    assert future.shape == (3, 10, 10) and ((future >= 0) & (future <= 1)).all()  # input's rank
    np.save(tmp_path / "two.npy", sequences[:2, :3])  # two (T, H, W) sequences, uint8
    predicted = run("predict", "--model", tmp_path / "run" / "model.npz", "--input",
                    tmp_path / "two.npy", "--output", tmp_path / "futures.npy", "--frames", 2)
    assert predicted.returncode == 0, predicted.stderr
    assert np.load(tmp_path / "futures.npy").shape == (2, 2, 10, 10)


@pytest.mark.parametrize("command", [[], ["demo"], ["train"], ["predict"], ["info"]])
def test_help_for_every_command(command):
    result = run(*command, "--help")
    assert result.returncode == 0 and "usage: " in result.stdout and "--" in result.stdout


def test_bench_is_not_a_command():
    # the benchmark lives in the source tree (benchmarks/run.py), not in the installed package
    result = run("bench", "--quick")
    assert result.returncode == 2 and "invalid choice: 'bench'" in result.stderr


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("convlstm 0.")


def _write(path, array):
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    ("make_arguments", "message"),
    [
        (lambda d: ["train", "--data", d / "missing.npy"], "no such file"),
        (lambda d: ["train", "--data", _write(d / "flat.npy", np.zeros((4, 5)))],
         r"expected sequences of shape \(N, T, H, W\) or \(N, T, H, W, C\); got \(4, 5\)"),
        (lambda d: ["train", "--data", _write(d / "nan.npy", np.full((2, 3, 4, 4), np.nan))],
         "the frames contain NaN or infinite values"),
        (lambda d: ["train", "--data", _write(d / "big.npy", np.full((2, 3, 4, 4), 7.0))],
         r"expected values in \[0, 1\]"),
        (lambda d: ["info", _write(d / "junk.npy", np.zeros(3))],
         "not a numpy-convlstm model file"),
        (lambda d: ["predict", "--model", d / "none.npz", "--input", d / "x.npy", "--output",
                    d / "y.npy"], "no such file"),
    ],
)
def test_errors_are_one_line_with_status_2(tmp_path, make_arguments, message):
    result = run(*make_arguments(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr


def test_random_bytes_are_not_a_model(tmp_path):
    junk = tmp_path / "model.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(300))
    result = run("info", junk)
    assert result.returncode == 2 and "is not a readable numpy-convlstm model file" in result.stderr


def test_unknown_option_exits_2():
    result = run("demo", "--colour", "blue")
    assert result.returncode == 2 and "unrecognized arguments: --colour" in result.stderr


KERAS_FILES = Path(__file__).parent / "fixtures" / "keras_files"


def test_info_and_predict_read_keras_files(tmp_path):
    info = run("info", KERAS_FILES / "next_frame.keras")
    assert info.returncode == 0, info.stderr
    assert "Keras 3 .keras archive" in info.stdout and "(None, None, 6, 6, 4)" in info.stdout
    np.save(tmp_path / "seq.npy", np.random.default_rng(0).random((3, 6, 6, 1)))
    predicted = run("predict", "--model", KERAS_FILES / "next_frame.keras", "--input",
                    tmp_path / "seq.npy", "--output", tmp_path / "out.npy", "--frames", 2)
    assert predicted.returncode == 0, predicted.stderr
    assert np.load(tmp_path / "out.npy").shape == (2, 6, 6, 1)
    refused = run("info", KERAS_FILES / "unsupported_gru.keras")
    assert refused.returncode == 2 and "(GRU) is not supported" in refused.stderr


def test_info_describes_the_convrnn_layers(tmp_path):
    from convlstm import ConvGRU2D, ConvLSTM1D, Flatten, Sequential

    model = Sequential([ConvLSTM1D(2, 3, peephole=True, num_layers=2), Flatten()],
                       input_shape=(4, 6, 2))
    info = run("info", model.save(tmp_path / "peephole.npz"))
    assert info.returncode == 0, info.stderr
    # cell 1: kernel 3*2*12, recurrent 3*3*12, bias 12, peephole 3*3; cell 2: kernel 3*3*12
    assert "ConvLSTM1D  (None, 4, 6, 3)  438" in info.stdout
    volume = run("info", Path(__file__).parent / "fixtures" / "convrnn_files" / "conv_lstm3d.h5")
    assert volume.returncode == 0, volume.stderr
    assert "ConvLSTM3D" in volume.stdout and "(None, 3, 2, 4, 5, 2)" in volume.stdout
    gru = Sequential([ConvGRU2D(1, 2, reset_after=False), Flatten()], input_shape=(3, 4, 4, 1))
    described = run("info", gru.save(tmp_path / "gru.npz"))
    assert described.returncode == 0, described.stderr
    # kernel 3*3*1*6 + recurrent 3*3*2*6 + bias 6
    assert "ConvGRU2D  (None, 3, 4, 4, 2)  168" in described.stdout
    both = run("info", Path(__file__).parent / "fixtures" / "convrnn_files" / "bidirectional.keras")
    assert both.returncode == 0, both.stderr
    assert "Bidirectional  (None, 3, 4, 5, 4)" in both.stdout
