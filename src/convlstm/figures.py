"""Pictures of predictions and training, drawn with matplotlib (the ``demo`` extra)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "drawing figures needs matplotlib: pip install matplotlib (from a clone: "
            "pip install -e '.[demo]')"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(axis, frame: np.ndarray) -> None:
    axis.imshow(frame[..., 0] if frame.shape[-1] == 1 else frame, cmap="gray", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])


def prediction_grid(
    path: str,
    context: np.ndarray,
    truth: np.ndarray,
    prediction: np.ndarray,
    dpi: int = 100,
    frame_labels: bool = False,
) -> None:
    """A PNG with three rows per sequence: input frames, true future, predicted future.

    Args:
        path: the PNG to write.
        context: (N, T_in, H, W, C); truth and prediction: (N, T_out, H, W, C), all in [0, 1].
        frame_labels: title every frame with its time (input t-9 ... t, future t+1 ...).
    """
    plt = _pyplot()
    count, columns = len(context), max(context.shape[1], truth.shape[1])
    figure, axes = plt.subplots(3 * count, columns, figsize=(1.1 * columns, 3.3 * count),
                                squeeze=False)
    labels = ("input", "truth", "predicted")
    for n in range(count):
        for row, (label, frames) in enumerate(zip(labels, (context[n], truth[n], prediction[n]))):
            line = axes[3 * n + row]
            for t in range(columns):
                if t < len(frames):
                    _show(line[t], frames[t])
                    if frame_labels:
                        offset = t - len(frames) + 1 if row == 0 else t + 1
                        title = "t" if offset == 0 else f"t{offset:+d}"
                        line[t].set_title(title, fontsize=7, pad=2)
                else:
                    line[t].axis("off")
            line[0].set_ylabel(label, fontsize=8)
    figure.tight_layout(pad=0.3)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def horizon_curves(path: str, scores: dict[str, dict[str, list[float]]]) -> None:
    """A PNG of per-frame MSE and SSIM against the forecast horizon, one line per method.

    Args:
        path: the PNG to write.
        scores: ``{method: {"mse_frame": [...], "ssim": [...]}}`` as
            :func:`convlstm.forecasting.evaluate` returns.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for method, values in scores.items():
        horizons = np.arange(1, len(values["mse_frame"]) + 1)
        label = method.replace("_", " ")
        axes[0].plot(horizons, values["mse_frame"], "o-", ms=3, label=label)
        axes[1].plot(horizons, values["ssim"], "o-", ms=3, label=label)
    for axis, name in zip(axes, ("MSE per frame (lower is better)", "SSIM (higher is better)")):
        axis.set_xlabel("frames ahead")
        axis.set_title(name, fontsize=10)
        axis.grid(alpha=0.3)
        axis.set_xticks(horizons)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def truth_vs_prediction_gif(path: str, truth: np.ndarray, prediction: np.ndarray) -> None:
    """An animated GIF: for every frame, the true frames on top and the predictions below.

    Args:
        path: the GIF to write.
        truth, prediction: (N, T, H, W, C) in [0, 1]; the N sequences sit side by side.
    """
    plt = _pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    count = len(truth)
    figure, axes = plt.subplots(2, count, figsize=(1.6 * count, 3.4), squeeze=False)
    axes[0, 0].set_ylabel("truth", fontsize=8)
    axes[1, 0].set_ylabel("predicted", fontsize=8)

    def draw(t: int):
        for n in range(count):
            _show(axes[0, n], truth[n, t])
            _show(axes[1, n], prediction[n, t])
        figure.suptitle(f"frame t+{t + 1}", fontsize=9)
        return []

    animation = FuncAnimation(figure, draw, frames=truth.shape[1])
    animation.save(path, writer=PillowWriter(fps=3))
    plt.close(figure)


def loss_curve(
    path: str, step_losses: Sequence[float], validation: Sequence[tuple[int, float]] = ()
) -> None:
    """A PNG of the training loss per step and, when given, the validation loss.

    Args:
        path: the PNG to write.
        step_losses: the loss of every training step.
        validation: ``(step, loss)`` points.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(np.arange(1, len(step_losses) + 1), step_losses, lw=1, label="training (per step)")
    if validation:
        steps, values = zip(*validation)
        axis.plot(steps, values, "o-", label="validation")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
