"""Package a Moving MNIST training run as the shipped pretrained model.

    python scripts/make_pretrained.py RUN_FOLDER

RUN_FOLDER is what ``convlstm train --dataset moving-mnist --out RUN_FOLDER ...`` wrote
(``model.npz`` and ``training.json``). The script:

1. loads the trained forecaster;
2. chooses an output threshold on validation sequences made from *training* digits (never the
   test digits): a sigmoid never reaches 0, and the faint haze it leaves on empty background
   costs SSIM far more than it saves in MSE. The threshold kept is the one, from a fixed list,
   with the best mean validation SSIM among those whose mean validation MSE stays within 1% of
   the model's own; 0 means none;
3. appends Keras' ``ReLU(threshold=t)`` (values at or below t become 0) when t > 0;
4. writes ``src/convlstm/pretrained/moving_mnist.npz`` with the training command, its wall time
   and the validation figures in the model's metadata.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from convlstm import ReLU, Sequential, datasets, forecasting, metrics, saving

THRESHOLDS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)
VALIDATION_SEQUENCES = 500
VALIDATION_SEED = 12345
MSE_TOLERANCE = 1.01
SOURCE = Path(__file__).resolve().parents[1] / "src"
TARGET = SOURCE / "convlstm" / "pretrained" / "moving_mnist.npz"


def with_threshold(model: Sequential, threshold: float) -> Sequential:
    """The model followed by ReLU(threshold) (the model itself for 0)."""
    if threshold == 0:
        return model
    thresholded = Sequential([*model.layers, ReLU(threshold=threshold)], model.input_shape)
    thresholded.metadata = dict(model.metadata)
    return thresholded


def main(run: Path) -> None:
    model = saving.load(run / "model.npz")
    state = json.loads((run / "training.json").read_text())
    validation = datasets.moving_mnist(VALIDATION_SEQUENCES, split="train", seed=VALIDATION_SEED)
    context, truth = validation[:, :10], validation[:, 10:]
    forecast = forecasting.forecast(model, context, 10)
    scores = {}
    for threshold in THRESHOLDS:
        cleaned = np.where(forecast > threshold, forecast, 0) if threshold else forecast
        scores[threshold] = (float(metrics.mse(truth, cleaned).mean()),
                             float(metrics.ssim(truth, cleaned).mean()))
        print(f"threshold {threshold:<5} validation MSE/frame {scores[threshold][0]:7.2f}  "
              f"SSIM {scores[threshold][1]:.4f}")
    allowed = [t for t in THRESHOLDS if scores[t][0] <= MSE_TOLERANCE * scores[0.0][0]]
    threshold = max(allowed, key=lambda t: scores[t][1])
    shipped = with_threshold(model, threshold)
    shipped.metadata.update(
        command=state["command"],
        steps=state["steps_done"],
        train_seconds=round(state["seconds"]),
        output_threshold=threshold,
        packaged_by=shlex.join(["python", "scripts/make_pretrained.py", str(run)]),
        validation={"sequences": VALIDATION_SEQUENCES, "seed": VALIDATION_SEED,
                    "split": "train digits",
                    "mse_frame_mean": scores[threshold][0], "ssim_mean": scores[threshold][1],
                    "without_threshold": {"mse_frame_mean": scores[0.0][0],
                                          "ssim_mean": scores[0.0][1]}},
    )
    saving.save(shipped, TARGET)
    print(f"threshold {threshold}; wrote {TARGET}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
