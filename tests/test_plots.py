"""Tests for gpbo/plots.py: what the figure shows and how it is saved."""

from __future__ import annotations

import math

import pytest

import gpbo
from gpbo.plots import plot
from gpbo.trial import Result, Trial

pytest.importorskip("matplotlib")
from matplotlib.backends.backend_agg import FigureCanvasAgg


def _result() -> Result:
    return Result(
        [
            Trial(
                0, {"x": 0.5}, status="failed", error="boom", started_at=1000.0, finished_at=1100.0
            ),
            Trial(
                1, {"x": 0.2}, value=1.0, status="complete", started_at=1100.0, finished_at=1200.0
            ),
        ],
        direction="minimize",
    )


def test_wall_time_counts_from_the_first_trial_started_even_a_failed_one():
    fig = plot(_result())
    ax = fig.axes[1]
    assert ax.get_title() == "best so far, by wall time"
    assert ax.get_xlabel() == "minutes since the first trial started"
    ((x, y),) = ax.collections[0].get_offsets()
    assert x == pytest.approx(200 / 60) and y == 1.0


@pytest.mark.parametrize("name", ["plot.txt", "plot"])
def test_a_path_without_an_image_suffix_is_a_clear_error_and_writes_nothing(tmp_path, name):
    with pytest.raises(gpbo.GpboError, match=r"suffix of an image format \(.*\.png"):
        plot(_result(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_previous_image_whole(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "plot.png"
    path.write_bytes(b"the previous plot")

    def disk_full(self, fname, **kwargs):
        with open(fname, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(OSError, match="No space left"):
        plot(_result(), path)
    assert path.read_bytes() == b"the previous plot"
    assert list(tmp_path.iterdir()) == [path], "no partial file is left behind"


def test_a_numeric_choice_axis_is_in_numeric_order_not_as_declared():
    # Choice([256, 32, 64, 128]) had its ticks 256, 32, 64, 128
    study = gpbo.Study({"width": gpbo.Choice([256, 32, 64, 128])}, strategy="grid", seed=0)
    for trial in study.ask(4):
        study.tell(trial, float(trial.params["width"]))
    ax = plot(study).axes[2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128", "256"]


@pytest.mark.parametrize(
    "names",
    [
        ["resnet18_pretrained_imagenet", "efficientnet_b0_noisy_student", "vit_tiny_patch16",
         "mobilenetv3_large_100"],
        ["resnet18_pretrained", "resnet50_pretrained", "resnet101_pretrained"],  # cut: clash
    ],
)
def test_long_category_labels_do_not_run_into_each_other(names):
    study = gpbo.Study({"model": gpbo.Choice(names)}, strategy="grid", seed=0)
    for trial in study.ask(len(names)):
        study.tell(trial, float(len(trial.params["model"])))
    fig = plot(study)
    ax = next(ax for ax in fig.axes if ax.get_title() == "value against model")
    FigureCanvasAgg(fig).draw()  # lays the figure out as saving does
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert len({t.get_text() for t in labels}) == len(names)  # told apart
    boxes = [t.get_window_extent() for t in labels]
    rotation = labels[0].get_rotation()
    if rotation == 0:
        for i, box in enumerate(boxes):
            for other in boxes[i + 1:]:
                assert not box.overlaps(other), [t.get_text() for t in labels]
    else:  # parallel slanted lines of text: apart by the tick spacing times sin(rotation)
        spacing = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]
        height = labels[0].get_fontsize() * fig.dpi / 72
        assert spacing * math.sin(math.radians(rotation)) > 1.2 * height
    assert all(fig.bbox.contains(box.x0, box.y0) for box in boxes)  # inside the figure


def test_parameter_axes_label_without_overlap_and_the_star_has_no_legend_over_points():
    space = {
        "hidden": gpbo.Int(32, 512, log=True),  # labelled 4x10^1, 6x10^1, 2x10^2... overlapping
        "layers": gpbo.Int(1, 3),
        "lr": gpbo.Real(1e-4, 1.0, log=True),
    }
    study = gpbo.Study(space, strategy="random", seed=0)
    for trial in study.ask(8):
        study.tell(trial, float(trial.params["layers"]))
    fig = plot(study)
    panels = {ax.get_title(): ax for ax in fig.axes}
    hidden, layers, lr = (panels[f"value against {name}"] for name in ("hidden", "layers", "lr"))
    fig.canvas.draw()
    low, high = hidden.get_xlim()
    shown = [t.get_text() for t in hidden.get_xticklabels() if low <= t.get_position()[0] <= high]
    assert set(shown) <= {"20", "50", "100", "200", "500", "1000"} and len(shown) >= 3, shown
    assert not any(t.get_text() for t in hidden.get_xticklabels(minor=True))
    assert all(float(t).is_integer() for t in layers.get_xticks())
    assert lr.get_xscale() == "log"
    assert all(ax.get_legend() is None for ax in (hidden, layers, lr))
    assert "the red star" in fig._suptitle.get_text()


def test_optimizes_result_plots_as_the_study_does():
    # Result had no space: log-scaled parameters on linear axes, integer ticks at 1.5
    space = {"lr": gpbo.Real(1e-4, 1.0, log=True), "layers": gpbo.Int(1, 3)}
    result = gpbo.optimize(lambda p: float(p["layers"]), space, n_trials=6, strategy="random",
                           seed=0, verbose=False)
    assert result.space == gpbo.Space(space)
    panels = {ax.get_title(): ax for ax in result.plot().axes}
    assert panels["value against lr"].get_xscale() == "log"
    assert all(float(t).is_integer() for t in panels["value against layers"].get_xticks())


def test_the_axes_take_the_metric_s_name_from_the_result():
    result = _result()
    result.metric = "accuracy"
    titles = [ax.get_title() for ax in plot(result).axes]
    assert "accuracy against x" in titles
    assert plot(result).axes[0].get_ylabel() == "accuracy"
    assert plot(result, metric="acc").axes[0].get_ylabel() == "acc"
