"""Samples per second of predict and of a training step: one process against a local Dask
cluster, and the bytes a synchronous data-parallel step moves.

    pip install -e '.[distributed]'
    python benchmarks/scale_out.py [--workers 2] [--samples 64] [--batch-size 16] [--steps 4]
    python benchmarks/scale_out.py --bounded-memory 1.2    # peak memory of a large predict

The model is the Moving MNIST forecaster (64x64 frames cut into 4x4 patches, two ConvLSTM2D
layers of 32 filters) on 10-frame sequences. The cluster predicts from a .npy file its workers
read (the archive case); training sends each step's rows from the client's memory. Cluster
start-up is not timed; every timing follows one warm-up call. The byte counts are the payloads'
sizes (array bytes, without the few hundred bytes of framing per message): the weights sent to
every worker, each worker's gradients and moving statistics sent back, and the batch's rows
when they are arrays in the client's memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time

import numpy as np

from convlstm import distributed, forecasting


def _model(frame_shape=(64, 64, 1)):
    model = forecasting.forecaster(frame_shape, filters=32, layers=2, seed=0)
    model.compile("adam", "binary_crossentropy")
    return model


def _best(function, repeats):
    function()  # warm-up: first calls allocate, workers build the model
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def bounded_memory(gigabytes: float, workers: int) -> None:
    """Predict over a .npy of ``gigabytes`` with a tiny model, written to zarr by the workers;
    print the peak resident memory of the client and of the largest worker process."""
    import psutil

    from convlstm import ConvLSTM2D, Sequential

    sample = (10, 100, 100, 1)
    count = int(gigabytes * 1e9 / (4 * np.prod(sample)))
    model = Sequential([ConvLSTM2D(1, 1, 1, seed=0)], input_shape=sample)
    me, peak, done = psutil.Process(), {"client": 0, "worker": 0}, threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak["client"] = max(peak["client"], me.memory_info().rss)
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    peak["worker"] = max(peak["worker"], child.memory_info().rss)
            time.sleep(0.05)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "big.npy")
        big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                        shape=(count, *sample))
        for start in range(0, count, 256):
            rows = big[start : start + 256]
            rows[...] = np.random.default_rng(start).random(rows.shape, dtype=np.float32)
        big.flush()
        del big, rows  # unmapped: the client starts from its own memory alone
        with distributed.connect(workers=workers) as client:
            watcher = threading.Thread(target=watch)
            watcher.start()
            started = time.perf_counter()
            distributed.write(distributed.predict(model, path, client=client, batch_size=32),
                              os.path.join(folder, "out.zarr"), client=client)
            done.set()
            watcher.join()
    print(f"predicted {count} sequences {sample} ({gigabytes:.1f} GB "
          f"of float32) in {time.perf_counter() - started:.0f} s on {workers} workers; peak "
          f"resident memory: client {peak['client'] / 1e6:.0f} MB, largest worker process "
          f"{peak['worker'] / 1e6:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=64, help="sequences to predict")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step")
    parser.add_argument("--steps", type=int, default=4, help="training steps timed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--bounded-memory", type=float, metavar="GB",
                        help="instead: predict over a .npy of this many GB and report the peak "
                             "memory of the client and the workers")
    args = parser.parse_args()
    if args.bounded_memory:
        bounded_memory(args.bounded_memory, args.workers)
        return

    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 10, 64, 64, 1), dtype=np.float32)
    y = (rng.random(x.shape) > 0.9).astype(np.float32)
    steps_x, steps_y = x[: args.batch_size * args.steps], y[: args.batch_size * args.steps]
    figures: dict = {"cpus": os.cpu_count(), "workers": args.workers,
                     "batch_size": args.batch_size, "sequence": [10, 64, 64, 1]}

    n = args.workers
    model = _model()
    one_predict = _best(lambda: model.predict(x, batch_size=args.batch_size), args.repeats)
    local = _model()
    one_step = _best(lambda: local.fit(steps_x, steps_y, batch_size=args.batch_size, verbose=0,
                                       seed=0), args.repeats) / args.steps

    with tempfile.TemporaryDirectory() as folder, distributed.connect(workers=n) as client:
        path = os.path.join(folder, "x.npy")
        np.save(path, x)  # the archive case: workers read their chunks from the file
        many_predict = _best(
            lambda: distributed.predict(model, path, client=client,
                                        batch_size=args.batch_size).compute(), args.repeats)
        remote = _model()
        many_step = _best(lambda: distributed.fit(remote, steps_x, steps_y, client=client,
                                                  batch_size=args.batch_size, verbose=0,
                                                  seed=0), args.repeats) / args.steps
        # the same weights on 4x4 frames of one step: next to no compute, all coordination
        tiny = _model((4, 4, 1))
        tiny_x = rng.random((n * args.steps, 1, 4, 4, 1), dtype=np.float32)
        overhead = _best(lambda: distributed.fit(tiny, tiny_x, tiny_x, client=client,
                                                 batch_size=n, verbose=0), args.repeats)
        overhead /= args.steps

    params, _ = model.trainable_weights()
    weights = sum(w.nbytes for w in model.get_weights())
    gradients = sum(p.nbytes for p in params.values())
    frozen = weights - gradients
    batch = steps_x[: args.batch_size].nbytes + steps_y[: args.batch_size].nbytes
    figures.update(
        weights_bytes=weights,
        predict_samples_per_s={"one process": args.samples / one_predict,
                               f"{n} workers": args.samples / many_predict},
        train_step_s={"one process": one_step, f"{n} workers": many_step},
        coordination_s_per_step=overhead,
        train_samples_per_s={"one process": args.batch_size / one_step,
                             f"{n} workers": args.batch_size / many_step},
        bytes_per_step={"weights to the workers": n * weights,
                        "gradients and statistics back": n * (gradients + frozen),
                        "batch rows (arrays in memory)": batch,
                        "total": n * (weights + gradients + frozen) + batch},
    )
    print(f"model: {weights / 4:,.0f} float32 weights ({weights / 1e6:.2f} MB); sequences "
          f"(10, 64, 64, 1); {os.cpu_count()} CPUs")
    print(f"{'':28}{'one process':>14}{f'{n} workers':>14}")
    for label, key, unit in (("predict, samples/s", "predict_samples_per_s", ".1f"),
                             ("training step, s", "train_step_s", ".3f"),
                             ("training, samples/s", "train_samples_per_s", ".1f")):
        values = list(figures[key].values())
        print(f"{label:28}{values[0]:>14{unit}}{values[1]:>14{unit}}")
    print(f"coordination per distributed step (the same weights, next to no compute): "
          f"{overhead:.3f} s")
    print(f"bytes per training step (batch {args.batch_size}, {n} workers):")
    for label, value in figures["bytes_per_step"].items():
        print(f"  {label:32}{value / 1e6:>8.2f} MB")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(figures, file, indent=2)


if __name__ == "__main__":
    main()
