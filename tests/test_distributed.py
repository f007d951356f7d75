"""convlstm.distributed on a real local Dask cluster: two worker processes of one thread each,
started here and closed after the module. Training is compared in float64, where the only
difference from ``model.fit`` is the order of a few additions: weights and losses agree to
1e-12 (relative)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import dask.array as da
import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster, WorkerPlugin

import convlstm
from convlstm import BatchNormalization, Conv3D, ConvLSTM2D, Dense, Flatten, Sequential, forecasting
from convlstm import distributed as cd
from convlstm.callbacks import Callback
from convlstm.cli import main
from convlstm.distributed import sources, tasks

TOLERANCE = 1e-12


def _cluster(workers):
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    return cluster, Client(cluster)


@pytest.fixture(scope="module")
def client():
    cluster, client = _cluster(2)
    with cluster, client:
        yield client


def _model(dtype="float64", compiled=True, batch_normalization=False):
    model = Sequential([
        ConvLSTM2D(1, 3, 3, "same", seed=0, dtype=dtype),
        *([BatchNormalization(dtype=dtype)] if batch_normalization else []),
        Conv3D(1, 3, padding="same", activation="sigmoid", seed=1, dtype=dtype),
    ], input_shape=(3, 6, 6, 1))
    if compiled:
        model.compile("adam", "binary_crossentropy", metrics=["mae", "accuracy"])
    return model


def _data(samples=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((samples, 3, 6, 6, 1)), rng.random((samples, 3, 6, 6, 1))


class BatchLosses(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, batch, logs):
        self.losses.append([logs["loss"], logs["mae"], logs["accuracy"]])


def _assert_same_training(local, distributed, local_history, distributed_history):
    assert set(distributed_history.history) == set(local_history.history)
    for key, values in local_history.history.items():  # loss, mae, accuracy and val_ each
        np.testing.assert_allclose(distributed_history.history[key], values, rtol=TOLERANCE)
    assert distributed_history.epoch == local_history.epoch
    for ours, theirs in zip(distributed.get_weights(), local.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE)
    for ours, theirs in zip(distributed.optimizer.state.values(), local.optimizer.state.values()):
        for slot in theirs:
            np.testing.assert_allclose(ours[slot], theirs[slot], rtol=1e-10, atol=TOLERANCE)
    assert distributed.optimizer.iterations == local.optimizer.iterations


def test_workers_run_this_checkout(client):
    files = client.run(lambda: __import__("convlstm").__file__)
    assert set(files.values()) == {convlstm.__file__}


def test_predict_equals_predict_and_builds_the_model_once_per_worker(client):
    model = forecasting.forecaster((8, 8, 1), filters=4, layers=1, block_size=2)
    x = np.random.default_rng(1).random((14, 3, 8, 8, 1)).astype(np.float32)
    before = sum(client.run(tasks.build_count).values())
    result = cd.predict(model, x, client=client, batch_size=4)
    assert isinstance(result, da.Array) and result.chunks[0] == (4, 4, 4, 2)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result.compute(), model.predict(x), rtol=1e-6, atol=1e-6)
    # four chunks, but each worker built the model (deserialised its weights) at most once
    assert 1 <= sum(client.run(tasks.build_count).values()) - before <= 2


def test_predict_and_forecast_without_a_client_use_dasks_local_scheduler():
    rng = np.random.default_rng(2)
    classifier = Sequential([ConvLSTM2D(1, 2, 3, return_sequences=False, seed=0), Flatten(),
                             Dense(3, activation="softmax", seed=1)], input_shape=(3, 6, 6, 1))
    videos = rng.random((7, 3, 6, 6, 1)).astype(np.float32)
    probabilities = cd.predict(classifier, da.from_array(videos, chunks=2), batch_size=3)
    assert probabilities.shape == (7, 3)
    np.testing.assert_allclose(probabilities.compute(), classifier.predict(videos), atol=1e-6)
    model = forecasting.next_frame_model((3, 6, 6, 1), filters=2, layers=1)
    future = cd.forecast(model, videos, 2, batch_size=4).compute()
    np.testing.assert_allclose(future, convlstm.forecast(model, videos, 2), atol=1e-6)


def test_predict_reads_npy_and_zarr_files_on_the_workers(client, tmp_path):
    model = _model(compiled=False)
    x, _ = _data(40)
    np.save(tmp_path / "x.npy", x)
    store = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=x.shape,
                            chunks=(8, *x.shape[1:]), dtype=x.dtype)
    store[:] = x
    expected = model.predict(x)
    for source in (tmp_path / "x.npy", np.load(tmp_path / "x.npy", mmap_mode="r"),
                   str(tmp_path / "x.zarr"), store):
        result = cd.predict(model, source, client=client, batch_size=16)
        # the graph names the file; the data stays out of it and is read by the workers
        assert len(cloudpickle.dumps(dict(result.__dask_graph__()))) < x.nbytes / 4
        np.testing.assert_allclose(result.compute(), expected, rtol=TOLERANCE)
    out = cd.write(cd.predict(model, tmp_path / "x.npy", client=client, batch_size=16),
                   tmp_path / "out.zarr", client=client)
    np.testing.assert_allclose(zarr.open_array(out, mode="r")[:], expected, rtol=TOLERANCE)


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_equals_model_fit(client, workers):
    x, y = _data()
    x_val, y_val = _data(5, seed=9)
    local, distributed = _model(), _model()
    local_batches, distributed_batches = BatchLosses(), BatchLosses()
    arguments = dict(epochs=2, batch_size=5, validation_data=(x_val, y_val), seed=7)
    local_history = local.fit(x, y, verbose=0, callbacks=[local_batches], **arguments)
    if workers == 2:
        history = cd.fit(distributed, x, y, client=client, verbose=0,
                         callbacks=[distributed_batches], **arguments)
    else:
        cluster, one = _cluster(1)
        with cluster, one:
            history = cd.fit(distributed, x, y, client=one, verbose=0,
                             callbacks=[distributed_batches], **arguments)
            # one shard is the whole batch, so BatchNormalization's statistics are the batch's
            local_bn, distributed_bn = _model(batch_normalization=True), _model(
                batch_normalization=True)
            bn_history = cd.fit(distributed_bn, x, y, client=one, verbose=0, **arguments)
        _assert_same_training(local_bn, distributed_bn,
                              local_bn.fit(x, y, verbose=0, **arguments), bn_history)
    _assert_same_training(local, distributed, local_history, history)
    np.testing.assert_allclose(distributed_batches.losses, local_batches.losses, rtol=TOLERANCE)
    assert len(distributed_batches.losses) == 6  # 3 batches (5, 5, 2) per epoch


def test_fit_reads_npy_and_zarr_shards_on_the_workers(client, tmp_path):
    x, y = _data()
    np.save(tmp_path / "x.npy", x)
    store = zarr.open_array(str(tmp_path / "y.zarr"), mode="w", shape=y.shape,
                            chunks=(4, *y.shape[1:]), dtype=y.dtype)
    store[:] = y
    local, distributed = _model(), _model()
    arguments = dict(epochs=1, batch_size=4, validation_split=0.25, seed=3, verbose=0)
    local_history = local.fit(x, y, **arguments)
    history = cd.fit(distributed, np.load(tmp_path / "x.npy", mmap_mode="r"), store,
                     client=client, **arguments)
    _assert_same_training(local, distributed, local_history, history)
    # what a task carries for a file is its description and row numbers, not the rows
    part = sources.part(sources.source("t", "x", tmp_path / "x.npy", False),
                        np.arange(12))
    assert len(cloudpickle.dumps(part)) < x.nbytes / 4


def test_errors_name_what_is_wrong(client):
    x, y = _data()
    with pytest.raises(ValueError, match=r"distributed.fit: expected x and y with the same "
                                         r"number of samples; got shapes \(12, .*\(11, "):
        cd.fit(_model(), x, y[:11], client=client)
    with pytest.raises(TypeError, match=r"distributed.fit: expected x to be a NumPy array, a "
                                        r"memory-mapped .npy, a zarr array, .*; got list"):
        cd.fit(_model(), x.tolist(), y, client=client)
    with pytest.raises(TypeError, match="got a dask array"):
        cd.fit(_model(), da.from_array(x), y, client=client)
    with pytest.raises(RuntimeError, match=r"distributed.fit: call model.compile\(optimizer"):
        cd.fit(_model(compiled=False), x, y, client=client)
    with pytest.raises(TypeError, match=r"expected client to be a distributed\.Client"):
        cd.fit(_model(), x, y, client=3)
    with pytest.raises(TypeError, match=r"distributed.predict: expected x to be .*; got dict"):
        cd.predict(_model(), {"x": x})
    with pytest.raises(ValueError, match=r"expected samples of shape \(3, 6, 6, 1\) .*; got "
                                         r"\(3, 5, 6, 1\)"):
        cd.predict(_model(), x[:, :, :5])
    with pytest.raises(FileNotFoundError, match="no such file or store for x"):
        cd.predict(_model(), "missing.npy")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_or_no_worker_is_a_clear_error_within_the_timeout(monkeypatch):
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.perf_counter()
    with pytest.raises(ConnectionError, match=f"cannot reach the Dask scheduler at {address} "
                                              "within 1 s"):
        cd.connect(address, timeout=1)
    assert time.perf_counter() - started < 5
    monkeypatch.setattr(cd, "CONNECT_TIMEOUT", 1.0)
    x, y = _data()
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        cd.fit(_model(), x, y, client=address)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty, Client(
        empty
    ) as idle, pytest.raises(TimeoutError, match=r"distributed.fit: the cluster has no worker "
                                                 r"after 1 s"):
        cd.fit(_model(), x, y, client=idle)


def test_cli_predict_and_train_on_a_local_cluster(tmp_path, capsys, monkeypatch):
    model = forecasting.next_frame_model((3, 6, 6, 1), filters=2, layers=1)
    model.save(tmp_path / "model.npz")
    frames = (np.random.default_rng(3).random((6, 3, 6, 6)) * 255).astype(np.uint8)
    np.save(tmp_path / "frames.npy", frames)
    common = ["--model", tmp_path / "model.npz", "--input", tmp_path / "frames.npy",
              "--frames", 2, "--batch-size", 4]
    assert main(["predict", *map(str, common), "--output", str(tmp_path / "local.npy")]) == 0
    assert main(["predict", *map(str, common), "--output", str(tmp_path / "out.zarr"),
                 "--workers", "2"]) == 0
    assert "chunk 2/2 [####################]" in capsys.readouterr().err
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[:],
                               np.load(tmp_path / "local.npy"), atol=1e-6)

    sequences = np.random.default_rng(4).random((6, 4, 6, 6)).astype(np.float32)
    np.save(tmp_path / "sequences.npy", sequences)
    train = ["train", "--data", str(tmp_path / "sequences.npy"), "--epochs", "1", "--layers",
             "1", "--filters", "2", "--batch-size", "3"]
    assert main([*train, "--out", str(tmp_path / "local")]) == 0
    assert main([*train, "--out", str(tmp_path / "cluster"), "--workers", "2"]) == 0
    for ours, theirs in zip(convlstm.load(tmp_path / "cluster" / "model.npz").get_weights(),
                            convlstm.load(tmp_path / "local" / "model.npz").get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)

    capsys.readouterr()
    assert main(["train", "--dataset", "moving-mnist", "--workers", "2"]) == 2
    assert "--workers/--scheduler: distributed training takes --data" in capsys.readouterr().err
    monkeypatch.setattr(cd, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    assert main([*train, "--out", str(tmp_path / "none"), "--scheduler", address]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"convlstm train: error: --scheduler: cannot reach the Dask "
                            f"scheduler at {address} within 1 s")
    assert error.count("\n") == 1


def _model_spec_holders(client):
    return [workers for key, workers in client.who_has().items() if "ModelSpec" in str(key)]


@pytest.mark.parametrize("victim", ["any worker", "the only holder of the model spec"])
def test_a_worker_killed_mid_epoch_costs_a_retry_not_the_run(client, tmp_path, victim):
    """A worker kills its own process as it starts a shard of the third step; its nanny starts
    a new one, Dask reruns the shard, and the weights equal an undisturbed run's.

    In the second case Dask's memory manager has first dropped the spare copies of the
    scattered model spec, so the dying worker takes the only one with it: the step is sent
    again with the spec scattered anew."""
    marker = tmp_path / "kill-once"
    only_holder = victim != "any worker"

    class KillOnce(WorkerPlugin):
        def setup(self, worker):
            self.worker = worker

        def transition(self, key, start, finish, **kwargs):
            if finish != "executing" or "shard_gradients" not in str(key):
                return
            if only_holder and not any("ModelSpec" in str(held) for held in self.worker.data):
                return
            try:
                os.rename(marker, f"{marker}.taken")  # only one worker wins the marker
            except FileNotFoundError:
                return
            os.kill(os.getpid(), signal.SIGKILL)

    class ArmAfterSecondStep(Callback):
        def on_batch_end(self, batch, logs):
            if batch != 1 or os.path.exists(f"{marker}.taken"):
                return
            if only_holder:
                deadline = time.monotonic() + 30
                while [len(holders) for holders in _model_spec_holders(client)] != [1]:
                    assert time.monotonic() < deadline, _model_spec_holders(client)
                    client.amm.run_once()
                    time.sleep(0.05)
            marker.touch()

    x, y = _data()
    undisturbed, disturbed = _model(), _model()
    arguments = dict(epochs=2, batch_size=4, seed=5, verbose=0)
    expected = cd.fit(undisturbed, x, y, client=client, **arguments)
    client.wait_for_workers(2, timeout=30)
    deadline = time.monotonic() + 30
    while _model_spec_holders(client):  # fit released its spec: the next one is alone
        assert time.monotonic() < deadline, _model_spec_holders(client)
        time.sleep(0.05)
    pids = set(client.run(os.getpid).values())
    client.register_plugin(KillOnce(), name="kill-once")
    try:
        history = cd.fit(disturbed, x, y, client=client, callbacks=[ArmAfterSecondStep()],
                         **arguments)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert os.path.exists(f"{marker}.taken")  # a worker did die
    client.wait_for_workers(2, timeout=30)
    assert set(client.run(os.getpid).values()) != pids  # and its nanny started a new one
    assert history.history == expected.history
    for ours, theirs in zip(disturbed.get_weights(), undisturbed.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_the_core_package_and_the_command_import_without_dask():
    code = ("import sys, convlstm, convlstm.cli; "
            "assert not {'dask', 'distributed', 'zarr'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_docs_example_runs_as_a_script(tmp_path):
    page = (Path(__file__).parent.parent / "docs" / "distributed.md").read_text()
    script = re.search(r"```py\n(.*?)```", page, flags=re.S).group(1)
    assert "distributed.connect(workers=2)" in script
    (tmp_path / "example.py").write_text(script)
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(8, 8, 8, 8) (32, 5, 16, 16, 1)" in result.stdout
    assert "epoch 2/2  loss " in result.stdout
