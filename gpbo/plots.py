"""Plots of a study: best so far against trials and wall time, and value against each parameter.

Needs matplotlib (the ``plot`` extra), imported when :func:`plot` is called; no
``pyplot`` state is touched, so it works the same in scripts, notebooks and worker processes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpbo.trial import Direction, Trial, count_by_status, format_counts, is_better

__all__ = ["plot"]


def plot(
    source: Any,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    metric: str | None = None,
) -> Any:
    """Draw a study's progress and how the value depends on each parameter.

    Panels: best so far (and every value) against the trial number; best so far against wall
    time since the first trial started; then, for each parameter, the value of every complete
    trial against that parameter, coloured by trial number, with the best trial starred.
    Failed and timed-out trials show as red marks along the bottom of the first panel.

    Args:
        source: A :class:`~gpbo.Result`, a :class:`~gpbo.Study` (whose space gives log axes
            and choice order), or anything with ``trials`` and ``direction``.
        path: Where to save the figure (the format follows the suffix, e.g. ``.png``);
            ``None`` only returns it. The file is replaced whole: a save that fails leaves
            the previous one as it was.
        title: The figure's title.
        metric: What to call the value on the axes; ``None``: the source's ``metric``
            (the name given to :func:`gpbo.optimize`), else ``"value"``.

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        GpboError: ``path`` has no suffix naming an image format matplotlib writes.
    """
    from gpbo._optional import import_optional

    import_optional("matplotlib", extra="plot", feature="plotting a study")
    from matplotlib.figure import Figure

    # Checked before drawing: matplotlib would add ``.png`` to a name without a suffix (the
    # file is then not where the caller says it is) and raise a bare ValueError for others.
    image_format = _image_format(path) if path is not None else None

    trials: list[Trial] = list(source.trials)
    direction: Direction = source.direction
    space = getattr(source, "space", None)
    if metric is None:
        metric = str(getattr(source, "metric", None) or "value")
    complete = [
        t
        for t in trials
        if t.status == "complete" and t.value is not None and math.isfinite(t.value)
    ]
    names = list(space.names) if space is not None else _param_names(trials)

    n_panels = 2 + len(names)
    ncols = min(3, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(4.4 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)

    _progress_by_trial(axes[0], trials, complete, direction, metric)
    _progress_by_time(axes[1], trials, complete, direction, metric)
    best = _best(complete, direction)
    for ax, name in zip(axes[2:], names, strict=False):
        param = space[name] if space is not None else None
        _value_against(ax, name, param, complete, best, metric)

    summary = format_counts(count_by_status(trials))
    head = title or "gpbo study"
    if best is not None:
        summary += f"; best {metric} {best.value:.6g} (trial {best.number}, the red star)"
    fig.suptitle(f"{head}: {summary}", fontsize=11)
    if path is not None:
        _save(fig, Path(path), image_format)
    return fig


def _image_format(path: str | Path) -> str:
    """The format named by ``path``'s suffix, if matplotlib can write it."""
    from matplotlib.backend_bases import FigureCanvasBase

    from gpbo.exceptions import GpboError

    supported = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in supported:
        names = ", ".join(f".{name}" for name in sorted(supported))
        raise GpboError(
            f"cannot save a plot as {str(path)!r}: end the file name with the suffix of an "
            f"image format ({names})"
        )
    return suffix


def _save(fig: Any, path: Path, image_format: str | None) -> None:
    """Write the figure beside ``path``, then move it over ``path`` in one step.

    An interrupted or failed save (Ctrl+C, a full disk) then leaves no half-written image in
    place of the previous one, and a viewer that reloads the file never reads a partial one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        fig.savefig(partial, format=image_format, dpi=110)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _param_names(trials: Sequence[Trial]) -> list[str]:
    names: list[str] = []
    for trial in trials:
        for name in trial.params:
            if name not in names:
                names.append(name)
    return names


def _best(complete: Sequence[Trial], direction: Direction) -> Trial | None:
    best: Trial | None = None
    for trial in complete:
        if best is None or is_better(trial.value, best.value, direction):  # type: ignore[arg-type]
            best = trial
    return best


def _running_best(values: Sequence[float], direction: Direction) -> list[float]:
    out: list[float] = []
    for value in values:
        out.append(value if not out or is_better(value, out[-1], direction) else out[-1])
    return out


def _progress_by_trial(
    ax: Any, trials: Sequence[Trial], complete: Sequence[Trial], direction: Direction, metric: str
) -> None:
    ax.set_title("best so far, by trial")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    if complete:
        xs = [t.number for t in complete]
        ys = [float(t.value) for t in complete]  # type: ignore[arg-type]
        ax.scatter(xs, ys, s=14, color="0.6", label="trial value", zorder=2)
        ax.step(xs, _running_best(ys, direction), where="post", color="C0", lw=2, label="best")
    failed = [t.number for t in trials if t.status in ("failed", "timeout")]
    if failed:
        ax.plot(
            failed,
            [0.0] * len(failed),
            "|",
            color="red",
            markersize=12,
            transform=ax.get_xaxis_transform(),
            label=f"failed/timeout ({len(failed)})",
        )
    if complete or failed:
        ax.legend(fontsize=8, loc="best")
    else:
        _empty(ax)


def _progress_by_time(
    ax: Any,
    trials: Sequence[Trial],
    complete: Sequence[Trial],
    direction: Direction,
    metric: str,
) -> None:
    ax.set_title("best so far, by wall time")
    ax.set_ylabel(metric)
    timed = sorted(
        (t for t in complete if t.finished_at is not None), key=lambda t: t.finished_at or 0.0
    )
    if not timed:
        ax.set_xlabel("minutes")
        _empty(ax)
        return
    # every trial, not only complete ones: time spent on failed trials counts too
    starts = [t.started_at for t in trials if t.started_at is not None]
    t0 = min(starts) if starts else timed[0].finished_at or 0.0
    span = (timed[-1].finished_at or t0) - t0
    unit, scale = ("hours", 3600.0) if span > 3 * 3600 else ("minutes", 60.0)
    if span < 120:
        unit, scale = "seconds", 1.0
    xs = [((t.finished_at or t0) - t0) / scale for t in timed]
    ys = [float(t.value) for t in timed]  # type: ignore[arg-type]
    ax.scatter(xs, ys, s=14, color="0.6", zorder=2)
    ax.step(xs, _running_best(ys, direction), where="post", color="C1", lw=2)
    ax.set_xlabel(f"{unit} since the first trial started")


def _value_against(
    ax: Any,
    name: str,
    param: Any,
    complete: Sequence[Trial],
    best: Trial | None,
    metric: str,
) -> None:
    from gpbo.space import Int

    ax.set_title(f"{metric} against {name}")
    ax.set_xlabel(name)
    ax.set_ylabel(metric)
    rows = [
        (t.params[name], float(t.value), t.number)  # type: ignore[arg-type]
        for t in complete
        if name in t.params
    ]
    if not rows:
        _empty(ax)
        return
    values = [r[0] for r in rows]
    categories = _categories(param, values)
    index = {_key(v): i for i, v in enumerate(categories or [])}

    def position(value: Any) -> float:
        return float(index.get(_key(value), -1)) if categories is not None else float(value)

    xs = [position(v) for v in values]
    if categories is not None:
        ax.set_xticks(range(len(categories)))
        labels = _tick_labels(categories)
        # a panel is about 30 characters wide: model names side by side ran into each other
        crowded = len(categories) > 5 or sum(len(label) + 2 for label in labels) > 30
        ax.set_xticklabels(
            labels, rotation=30 if crowded else 0, ha="right" if crowded else "center",
            rotation_mode="anchor",
        )
        ax.set_xlim(-0.5, len(categories) - 0.5)
    elif _log_axis(param, xs):
        _log_scale(ax, xs)
    elif isinstance(param, Int):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # not layers 1.0, 1.5, 2.0
    points = ax.scatter(
        xs, [r[1] for r in rows], c=[r[2] for r in rows], cmap="viridis", s=18, zorder=2
    )
    if best is not None and name in best.params:
        ax.scatter(
            [position(best.params[name])],
            [best.value],
            marker="*",
            s=160,
            color="red",
            zorder=3,
        )  # no legend: it covered points, the star among them; the title says what it is
    cbar = ax.figure.colorbar(points, ax=ax, pad=0.01)
    cbar.set_label("trial", fontsize=8)


def _categories(param: Any, values: Sequence[Any]) -> list[Any] | None:
    """The x positions' labels for a choice parameter; ``None`` for a numeric axis."""
    from gpbo.space import Choice

    if isinstance(param, Choice):
        # numbers in their order (as the space searches them), not as declared: [256, 32, 64]
        return sorted(param.values) if param.ordinal else list(param.values)
    if param is not None:
        return None
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    seen: list[Any] = []
    for value in values:
        if _key(value) not in {_key(s) for s in seen}:
            seen.append(value)
    return seen


def _log_scale(ax: Any, xs: Sequence[float]) -> None:
    """A log x axis whose labels do not overlap: over less than two decades (``hidden`` from 32
    to 512) matplotlib labels its minor ticks as ``4x10^1``, ``6x10^1``..., so the ticks are
    then 1, 2 and 5 times the powers of ten, labelled plainly, and the minor ones unlabelled."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    ax.set_xscale("log")
    positive = [x for x in xs if x > 0]
    if positive and max(positive) / min(positive) < 100:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def _log_axis(param: Any, xs: Sequence[float]) -> bool:
    if param is not None:
        return bool(getattr(param, "log", False))
    positive = [x for x in xs if x > 0]
    return len(positive) == len(xs) and bool(xs) and max(xs) / min(xs) >= 100


def _key(value: Any) -> str:
    return repr(value)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_LABEL_CHARS = 14


def _tick_labels(categories: Sequence[Any]) -> list[str]:
    """Each category's label, a long one cut in the middle (``efficien…_student``), unless
    the cut labels clash (``resnet18_pretrained``, ``resnet50_pretrained``)."""
    labels = [_label(v) for v in categories]
    half = (_LABEL_CHARS - 1) // 2
    cut = [
        label if len(label) <= _LABEL_CHARS else f"{label[:half]}\u2026{label[-half:]}"
        for label in labels
    ]
    return cut if len(set(cut)) == len(set(labels)) else labels


def _empty(ax: Any) -> None:
    ax.text(0.5, 0.5, "no complete trial yet", ha="center", va="center", transform=ax.transAxes)
