"""The command line given bad input: exit status 2 and one line on stderr naming the flag or
the file, what was expected and what was given; never a traceback. Run in-process through
``convlstm.cli.main``, with tiny files."""

import json
import re

import numpy as np
import pytest

from convlstm import ConvLSTM2D, Sequential, saving
from convlstm.cli import main


def run(capsys, *arguments):
    """``(exit status, stderr)`` of ``convlstm <arguments>``."""
    try:
        status = main([str(argument) for argument in arguments])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    return status, capsys.readouterr().err


def assert_one_line(status, stderr, pattern):
    assert status == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert re.search(pattern, stderr), stderr


@pytest.fixture
def files(tmp_path):
    """A folder of small inputs: good sequences, and bad ones of every kind."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "sequences.npy", rng.random((4, 4, 6, 6)).astype(np.float32))
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    np.save(tmp_path / "empty.npy", np.zeros((0, 4, 6, 6)))
    np.save(tmp_path / "flat.npy", np.zeros((3, 3)))
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    np.save(tmp_path / "one_frame.npy", np.zeros((4, 1, 6, 6)))
    np.save(tmp_path / "channels.npy", np.zeros((4, 6, 6, 3)))
    np.save(tmp_path / "sequence.npy", np.zeros((4, 6, 6)))
    (tmp_path / "file.txt").write_text("x")
    model = Sequential([ConvLSTM2D(1, 1, 3, "same")], input_shape=(3, 6, 6, 1))
    model.save(tmp_path / "model.npz")
    Sequential([ConvLSTM2D(1, 1, 3)]).save(tmp_path / "no_shape.npz")
    saving.save(ConvLSTM2D(1, 1, 3), tmp_path / "bare.npz")
    return tmp_path


TRAIN = ["train", "--filters", 1, "--layers", 1, "--batch-size", 2]


def _train(d, data="sequences.npy", out="run", *extra):
    return [*TRAIN, "--epochs", 1, "--data", d / data, "--out", d / out, *extra]


def _predict(d, model="model.npz", given="sequence.npy", output="y.npy", *extra):
    return ["predict", "--model", d / model, "--input", d / given, "--output", d / output,
            *extra]


CASES = [
    # files given to train
    (lambda d: _train(d, "missing.npy"), r"--data: no such file: .*missing.npy"),
    (lambda d: _train(d, "."), r"--data: .* is a folder; expected a .npy or .npz file"),
    (lambda d: _train(d, "objects.npy"), r"--data: cannot read .*objects.npy .*allow_pickle"),
    (lambda d: _train(d, "empty.npy"),
     r"--data: .*empty.npy: expected sequences; got an empty array of shape \(0, 4, 6, 6\)"),
    (lambda d: _train(d, "flat.npy"),
     r"--data: .*flat.npy: expected sequences of shape \(N, T, H, W\) or \(N, T, H, W, C\); "
     r"got \(3, 3\)"),
    (lambda d: _train(d, "text.npy"), r"--data: .*text.npy: expected numeric frames; got dtype"),
    (lambda d: _train(d, "one_frame.npy"), r"sequences need at least 2 frames; got 1"),
    (lambda d: _train(d, "sequences.npy", "run", "--key", "x"),
     r"--key: .*sequences.npy is a .npy file; --key names an array in a .npz"),
    (lambda d: _train(d, "batch_size.npy"), r"--data: no such file: .*/batch_size.npy$"),
    (lambda d: _predict(d, output="no/learning_rate.npy"),
     r"--output: cannot write '.*no/learning_rate.npy': the folder"),
    (lambda d: _train(d, "sequences.npy", "file.txt"), r"--out: .*file.txt is a file, not a "
                                                       r"folder"),
    (lambda d: _train(d, "sequences.npy", "file.txt/run"),
     r"--out: cannot make the folder .*file.txt/run: Not a directory"),
    (lambda d: _train(d, "sequences.npy", "run", "--validation-split", 0.9),
     r"--validation-split: 0.9 of the 4 sequences in .*sequences.npy leaves none to train on"),
    (lambda d: _train(d, "sequences.npy", "run", "--resume"),
     r"--resume: nothing to resume in .*run: it needs model.npz and training.json; it has "
     r"neither"),
    (lambda d: _train(d, "sequences.npy", "run", "--resume", "--overwrite"),
     r"argument --overwrite: not allowed with argument --resume"),
    (lambda d: _train(d, "sequences.npy", "run", "--kernel", 100_000),
     r"--filters/--layers/--kernel: a weight of shape \(100000, 100000, 1, 4\) has "
     r"40,000,000,000 elements; expected at most MAX_WEIGHT_ELEMENTS"),
    (lambda d: [*_train(d), "--scheduler", "junk://x"], r"--scheduler: .*junk"),
    (lambda d: ["train", "--dataset", "moving-mnist", "--out", d / "mm", "--workers", 2],
     r"--workers/--scheduler: distributed training takes --data"),
    # models and outputs
    (lambda d: _predict(d, "missing.npz"), r"--model: load: no such file '.*missing.npz'"),
    (lambda d: _predict(d, "."), r"--model: load: '.*' is a folder; expected a model file"),
    (lambda d: _predict(d, "file.txt"), r"--model: load: '.*file.txt' is not a readable"),
    (lambda d: _predict(d, "no_shape.npz"),
     r"--model: .*no_shape.npz holds a Sequential with input shape None; expected a "
     r"Sequential saved with input_shape=\(time, height, width, channels\)"),
    (lambda d: _predict(d, "bare.npz"), r"--model: .*bare.npz holds a ConvLSTM2D with input "
                                        r"shape None"),
    (lambda d: _predict(d, "model.npz", "missing.npy"), r"--input: no such file"),
    (lambda d: _predict(d, "model.npz", "objects.npy"), r"--input: cannot read .*objects.npy"),
    (lambda d: _predict(d, "model.npz", "empty.npy"), r"--input: .*empty.npy: expected "
                                                      r"sequences; got an empty array"),
    (lambda d: _predict(d, "model.npz", "flat.npy"),
     r"--input: .*flat.npy: expected one sequence \(T, 6, 6\[, 1\]\) or many \(N, T, 6, 6\[, "
     r"1\]\) for the model's frames \(6, 6, 1\); got \(3, 3\)"),
    (lambda d: _predict(d, "model.npz", "channels.npy"), r"got \(4, 6, 6, 3\)"),
    (lambda d: _predict(d, "model.npz", "sequence.npy", "."),
     r"--output: cannot write '.*': it is a folder"),
    (lambda d: _predict(d, "model.npz", "sequence.npy", "no/y.npy"),
     r"--output: cannot write '.*no/y.npy': the folder '.*no' does not exist"),
    (lambda d: _predict(d, "model.npz", "sequence.npy", "y.zarr"),
     r"--input/--output: zarr stores need --workers or --scheduler"),
    (lambda d: ["info", d / "missing.npz"], r"load: no such file"),
    (lambda d: ["export", "--model", d / "model.npz", "--onnx", d],
     r"--onnx: cannot write '.*': it is a folder"),
    (lambda d: ["export", "--model", d / "model.npz", "--onnx", d / "no" / "m.onnx"],
     r"--onnx: cannot write .* does not exist"),
    (lambda d: ["demo", "--out", d / "file.txt"], r"--out: .*file.txt is a file, not a folder"),
    (lambda d: ["demo", "--pretrained", "--dataset", "shapes"],
     r"--pretrained: the shipped model is for --dataset moving-mnist"),
    (lambda d: ["demo", "--out", ""], r"--out: expected a folder; got ''"),
    (lambda d: [*_train(d)[:-2], "--out", ""], r"--out: expected a folder; got ''"),
    # flags that would do nothing
    (lambda d: _train(d, "sequences.npy", "run", "--steps", 5, "--minutes", 1),
     r"--steps/--minutes: have no effect with --data \(it trains --epochs over the file\)"),
    (lambda d: ["train", "--dataset", "moving-mnist", "--epochs", 3],
     r"--epochs: has no effect with --dataset moving-mnist"),
    (lambda d: ["demo", "--size", 16], r"--size: has no effect with --dataset moving-mnist"),
    (lambda d: ["demo", "--dataset", "shapes", "--test-sequences", 5],
     r"--test-sequences: has no effect with --dataset shapes"),
    (lambda d: ["demo", "--pretrained", "--steps", 5],
     r"--steps: has no effect with --pretrained \(it trains nothing\)"),
]


@pytest.mark.parametrize(("make_arguments", "message"), CASES)
def test_bad_files_and_folders_are_one_line_naming_the_flag(files, capsys, make_arguments,
                                                            message):
    assert_one_line(*run(capsys, *make_arguments(files)), message)
    assert not list(files.rglob("*.partial*"))


def test_the_onnx_opset_is_named_as_the_flag(files, capsys):
    pytest.importorskip("onnx")
    status, stderr = run(capsys, "export", "--model", files / "model.npz", "--onnx",
                         files / "m.onnx", "--opset", 5)
    assert_one_line(status, stderr, r"expected --opset between 13 and \d+; got 5")


NUMBERS = [
    # (command, flag, value, message)
    ("train", "--batch-size", "0", r"expected an integer >= 1; got 0"),
    ("train", "--batch-size", "1.5", r"expected an integer >= 1; got '1.5'"),
    ("train", "--filters", "0", r"expected an integer >= 1; got 0"),
    ("train", "--layers", "1000000", r"expected an integer from 1 to 100; got 1000000"),
    ("train", "--kernel", "-3", r"expected an integer >= 1; got -3"),
    ("train", "--epochs", "0", r"expected an integer >= 1; got 0"),
    ("train", "--steps", "0", r"expected an integer >= 1; got 0"),
    ("train", "--seed", "-1", r"expected an integer from 0 to 9,223,372,036,854,775,807; got -1"),
    ("train", "--seed", str(2**63), r"expected an integer from 0 to [\d,]+; got 922"),
    ("train", "--learning-rate", "nan", r"expected a finite number > 0; got 'nan'"),
    ("train", "--learning-rate", "-0.001", r"expected a finite number > 0; got '-0.001'"),
    ("train", "--learning-rate", "inf", r"expected a finite number > 0; got 'inf'"),
    ("train", "--learning-rate-decay", "0", r"expected a finite number > 0 and <= 1; got '0'"),
    ("train", "--learning-rate-decay", "5", r"expected a finite number > 0 and <= 1; got '5'"),
    ("train", "--minutes", "-1", r"expected a finite number > 0; got '-1'"),
    ("train", "--validation-split", "1", r"expected a finite number >= 0 and < 1; got '1'"),
    ("train", "--validation-split", "-0.1", r"expected a finite number >= 0 and < 1; got '-0.1'"),
    ("train", "--time-axis", "2", r"invalid choice: 2"),
    ("train", "--workers", "0", r"expected an integer from 1 to 1,024; got 0"),
    ("predict", "--frames", "0", r"expected an integer from 1 to 10,000; got 0"),
    ("predict", "--batch-size", "x", r"expected an integer >= 1; got 'x'"),
    ("demo", "--speed", "nan", r"expected a finite number > 0; got 'nan'"),
    ("demo", "--speed", "-1", r"expected a finite number > 0; got '-1'"),
    ("demo", "--size", "100000", r"expected an integer from 8 to 512; got 100000"),
    ("demo", "--objects", "1000000", r"expected an integer from 1 to 100; got 1000000"),
    ("demo", "--frames", "2", r"expected an integer from 3 to 1,000; got 2"),
    ("demo", "--sequences", "3", r"expected an integer from 16 to 20,000; got 3"),
    ("demo", "--test-sequences", "0", r"expected an integer from 1 to 10,000; got 0"),
    ("demo", "--examples", "0", r"expected an integer from 1 to 64; got 0"),
    ("demo", "--minutes", "inf", r"expected a finite number > 0; got 'inf'"),
    ("export", "--opset", "0", r"expected an integer >= 1; got 0"),
]
REQUIRED = {"train": ["--data", "x.npy"], "predict": ["--model", "m", "--input", "i",
                                                     "--output", "o"],
            "demo": [], "export": ["--model", "m", "--onnx", "o"]}


@pytest.mark.parametrize(("command", "flag", "value", "message"), NUMBERS)
def test_numeric_flags_are_checked_before_any_work(capsys, command, flag, value, message):
    status, stderr = run(capsys, command, *REQUIRED[command], flag, value)
    assert_one_line(status, stderr, rf"convlstm {command}: error: argument {flag}: {message}")


@pytest.mark.parametrize("held", ["model.npz", "training.json", "optimizer.npz"])
@pytest.mark.parametrize("source", [["--data", "sequences.npy"], ["--dataset", "moving-mnist"]])
def test_a_folder_holding_a_run_needs_resume_or_overwrite(files, capsys, held, source):
    (files / "run").mkdir()
    (files / "run" / held).write_text("{}")
    data = [source[0], files / source[1]] if source[0] == "--data" else source
    status, stderr = run(capsys, *TRAIN, *data, "--out", files / "run")
    assert_one_line(status, stderr, rf"--out: .*run already holds a run \({held}\); pass "
                                    r"--resume to continue it or --overwrite to start again")


def test_resume_lists_the_architecture_flags_that_differ(files, capsys):
    arguments = [*TRAIN, "--epochs", 1, "--data", files / "sequences.npy", "--out",
                 files / "run"]
    assert run(capsys, *arguments)[0] == 0
    state = json.loads((files / "run" / "training.json").read_text())
    assert state["architecture"] == {"--filters": 1, "--layers": 1, "--kernel": 3}
    status, stderr = run(capsys, *arguments, "--filters", 2, "--kernel", 5, "--layers", 1,
                         "--resume")
    assert_one_line(status, stderr, r"--resume: the model in .*run was trained with other "
                                    r"architecture flags: --filters is 1 in the checkpoint, 2 "
                                    r"given; --kernel is 3 in the checkpoint, 5 given \(leave "
                                    r"them out to keep the checkpoint's\)")
    resumed = run(capsys, *TRAIN[:-2], "--epochs", 2, "--batch-size", 2, "--data",
                  files / "sequences.npy", "--out", files / "run", "--resume")
    assert resumed[0] == 0, resumed[1]
    np.save(files / "wider.npy", np.zeros((4, 4, 8, 8)))
    status, stderr = run(capsys, *arguments[:-4], "--data", files / "wider.npy", "--out",
                         files / "run", "--resume")
    assert_one_line(status, stderr, r"--data: frames of shape \(8, 8, 1\) in .*wider.npy do not "
                                    r"fit the checkpoint's \(6, 6, 1\)")


@pytest.mark.parametrize(("content", "message"), [
    ("{corrupt", r"--resume: .*training.json: training.json is not valid JSON"),
    ('{"epochs_done": "x", "loss": [], "val_loss": []}',
     r"--resume: .*training.json is not a training state of this command: expected "
     r"epochs_done \(int >= 0\)"),
    ('{"epochs_done": -1, "loss": [], "val_loss": []}', r"expected epochs_done \(int >= 0\)"),
    ('{"epochs_done": 0, "loss": [], "val_loss": [], "architecture": {"--filters": "x"}}',
     r"expected architecture \(dict of --flag: int\)"),
    ('{"epochs_done": 0, "loss": ["x", [1]], "val_loss": []}',
     r"expected loss \(list of numbers\)"),
    ("[1, 2]", r"expected epochs_done \(int >= 0\), loss \(list of numbers\), val_loss "
               r"\(list of numbers\)"),
    ('{"epochs_done": 0, "loss": [], "val_loss": [], "epochs_done": 9}',
     r"training.json is refused: it repeats the key 'epochs_done' in one object"),
    ('{"epochs_done": 1' + "0" * 80 + ', "loss": [], "val_loss": []}',
     r"training.json holds an integer of 266 bits; expected at most MAX_INTEGER_BITS = 256"),
    ("[" * 10_000, r"training.json nests 10000 levels deep; expected at most MAX_CONFIG_DEPTH"),
    (None, r"training.json is not a regular file \(a device, a pipe or a socket\)"),
])
def test_a_bad_training_state_is_refused_on_resume(files, capsys, content, message):
    (files / "run").mkdir()
    if content is None:  # reading /dev/zero never ends
        (files / "run" / "training.json").symlink_to("/dev/zero")
    else:
        (files / "run" / "training.json").write_text(content)
    (files / "model.npz").rename(files / "run" / "model.npz")
    status, stderr = run(capsys, *TRAIN, "--data", files / "sequences.npy", "--out",
                         files / "run", "--resume")
    assert_one_line(status, stderr, message)


STATE = {"rounds_done": 0, "steps_done": 0, "seconds": 0.0, "loss": [], "command": "x"}


@pytest.mark.parametrize(("state", "optimizer", "message"), [
    (STATE, b"not a zip", r"--resume: .*optimizer.npz is not a readable optimizer state"),
    (STATE, {"iterations": np.array(-3)},
     r"optimizer.npz: expected iterations, an int >= 0; got array\(-3\)"),
    (STATE, {"iterations": np.array(3), "0/0/kernel::momentum": np.zeros((9, 9), np.float32)},
     r"optimizer.npz: expected float slots named '<weight>::<slot>' for the weights "
     r"0/0/kernel \(3, 3, 1, 4\).*; got '0/0/kernel::momentum': float32 \(9, 9\)"),
    (STATE, {"iterations": np.array(3), "9/kernel::momentum": np.zeros(4, np.float32)},
     r"got '9/kernel::momentum': float32 \(4,\)"),
    ({**STATE, "seconds": float("inf")}, None, r"expected seconds \(int >= 0 or finite float"),
    ({**STATE, "seconds": -1.5}, None, r"expected seconds \(int >= 0 or finite float"),
])
def test_a_bad_moving_mnist_state_is_refused_on_resume(files, capsys, state, optimizer,
                                                       message):
    run_folder = files / "run"
    run_folder.mkdir()
    (files / "model.npz").rename(run_folder / "model.npz")
    (run_folder / "training.json").write_text(json.dumps(state))
    if isinstance(optimizer, bytes):
        (run_folder / "optimizer.npz").write_bytes(optimizer)
    elif optimizer is not None:
        np.savez(run_folder / "optimizer.npz", **optimizer)
    status, stderr = run(capsys, *TRAIN, "--dataset", "moving-mnist", "--out", run_folder,
                         "--resume")
    assert_one_line(status, stderr, message)
