"""The card's PNG plots (ROC, precision-recall, reliability, confusion, slices, importance): a pure function of
the card JSON.

Everything that could make two renders of the same numbers differ is pinned: defaults instead of the
user's matplotlibrc, one bundled font, fixed size and dpi, and no Software/time metadata in the PNG.
"""

from __future__ import annotations

import io
from typing import Any

from mlops.cards.markdown import number, overall_test, slice_table

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 100,
    "figure.dpi": 100,
    "path.simplify": False,
}
_PNG_METADATA = {"Software": None}
_CHANCE = {"color": "#888888", "linestyle": "--", "linewidth": 1}


def render_plots(card: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes of every plot, a pure function of the card JSON (same card, same bytes)."""
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        return {
            "roc": _plot_roc(card),
            "pr": _plot_pr(card),
            "reliability": _plot_reliability(card),
            "confusion": _plot_confusion(card),
            "slices": _plot_slices(card),
            "importance": _plot_importance(card),
        }


def _figure(width: float, height: float, *, left: float = 0.6, bottom: float = 0.5) -> tuple[Any, Any]:
    """A figure with fixed margins in inches: tight_layout would cost an extra full draw per plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - 0.15 / width, bottom=bottom / height, top=1 - 0.35 / height)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata=_PNG_METADATA)
    return buf.getvalue()


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _test_metric(card: dict[str, Any], name: str) -> Any:
    """The whole test split's value of one metric, None when the card has none."""
    performance = card["quantitative_analysis"]["performance_metrics"]
    return next((p["value"] for p in overall_test(performance) if p["type"] == name), None)


def _unit_axes(ax: Any, xlabel: str, ylabel: str, legend: str) -> None:
    """The diagonal for reference, both axes on [0, 1], labels and the legend: what ROC and reliability share."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc=legend)


def _plot_roc(card: dict[str, Any]) -> bytes:
    roc = card["quantitative_analysis"].get("roc")
    fig, ax = _figure(4.5, 4.0)
    if roc:
        auc = _test_metric(card, "roc_auc")
        fpr, tpr = [pt[0] for pt in roc], [pt[1] for pt in roc]
        ax.plot(fpr, tpr, color="#1f77b4", linewidth=2, label=f"model (AUC {number(auc)})")
        ax.plot([0, 1], [0, 1], label="chance", **_CHANCE)
        c = card["quantitative_analysis"].get("confusion")
        if c and c["fp"] + c["tn"] and c["tp"] + c["fn"]:
            fpr_at, tpr_at = c["fp"] / (c["fp"] + c["tn"]), c["tp"] / (c["tp"] + c["fn"])
            ax.plot([fpr_at], [tpr_at], "o", color="#d62728", label=f"threshold {c['threshold']:g}")
        _unit_axes(ax, "false positive rate", "true positive rate", "lower right")
    else:
        _note(ax, "ROC curve not recorded")
    ax.set_title("ROC curve (test split)")
    return _png(fig)


def _plot_pr(card: dict[str, Any]) -> bytes:
    pr = card["quantitative_analysis"].get("pr")
    fig, ax = _figure(4.5, 4.0)
    if pr:
        ax.plot([pt[0] for pt in pr], [pt[1] for pt in pr], color="#1f77b4", linewidth=2, label="model")
        base = _test_metric(card, "positive_rate")
        if base is not None:
            ax.plot([0, 1], [base, base], label=f"chance (positive rate {number(base)})", **_CHANCE)
        c = card["quantitative_analysis"].get("confusion")
        if c and c["tp"] + c["fp"] and c["tp"] + c["fn"]:
            recall, precision = c["tp"] / (c["tp"] + c["fn"]), c["tp"] / (c["tp"] + c["fp"])
            ax.plot([recall], [precision], "o", color="#d62728", label=f"threshold {c['threshold']:g}")
        _unit_axes(ax, "recall", "precision (interpolated)", "lower left")
    else:
        _note(ax, "precision-recall curve not recorded")
    ax.set_title("Precision-recall curve (test split)")
    return _png(fig)


def _plot_reliability(card: dict[str, Any]) -> bytes:
    bins = [b for b in card["quantitative_analysis"]["reliability"] if b["count"]]
    fig, ax = _figure(4.5, 4.0)
    if bins:
        lows, observed = [b["bin_low"] for b in bins], [b["observed_rate"] for b in bins]
        width = bins[0]["bin_high"] - bins[0]["bin_low"]
        label = "observed positive rate"
        ax.bar(lows, observed, width=width * 0.9, align="edge", color="#1f77b4", alpha=0.7, label=label)
        ax.plot([b["mean_predicted"] for b in bins], observed, "o", color="#d62728", label="bin mean predicted")
        ax.plot([0, 1], [0, 1], label="perfect calibration", **_CHANCE)
        for b in bins:  # how many test rows each bar stands on
            ax.text(b["bin_low"] + width * 0.45, min(b["observed_rate"] + 0.02, 0.95), f"n={b['count']}",
                    ha="center", va="bottom", fontsize=6.5, rotation=90)  # fmt: skip
        _unit_axes(ax, "predicted probability", "observed positive rate", "upper left")
    else:
        _note(ax, "reliability not recorded")
    ax.set_title(f"Reliability diagram (ECE {number(_test_metric(card, 'ece'))})")
    return _png(fig)


def _plot_confusion(card: dict[str, Any]) -> bytes:
    c = card["quantitative_analysis"].get("confusion")
    fig, ax = _figure(4.0, 3.6, left=0.75)
    if c:
        grid = [[c["tp"], c["fn"]], [c["fp"], c["tn"]]]
        top = max(max(row) for row in grid) or 1
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=top)
        for i in range(2):
            for j in range(2):
                colour = "white" if grid[i][j] > top / 2 else "black"
                ax.text(j, i, str(grid[i][j]), ha="center", va="center", fontsize=12, color=colour)
        ax.set_xticks([0, 1], ["predicted +", "predicted −"])
        ax.set_yticks([0, 1], ["actual +", "actual −"])
        ax.grid(False)
    else:
        _note(ax, "confusion matrix not recorded")
    ax.set_title(f"Confusion matrix (threshold {(c or {}).get('threshold', 0.5):g})")
    return _png(fig)


def _plot_slices(card: dict[str, Any]) -> bytes:
    """Accuracy per slice with its 95 % interval and n, the overall value as a line; small slices in grey."""
    labels, values, lows, highs, colours = [], [], [], [], []
    for column, entries in slice_table(card).items():
        for e in entries:
            acc = e["metrics"].get("accuracy") or 0.0
            low, high = e["ci"].get("accuracy", (acc, acc))
            labels.append(f"{column}={e['value']} (n={e['n']})")
            values.append(acc)
            lows.append(max(acc - low, 0.0))
            highs.append(max(high - acc, 0.0))
            colours.append("#aaaaaa" if e["small"] else "#1f77b4")
    # Room for the longest label at ~6 px per character of the 9 pt font.
    left = 0.25 + 0.065 * max((len(x) for x in labels), default=4)
    fig, ax = _figure(6.5, max(2.0, 0.3 * len(labels) + 1.2), left=left, bottom=0.75)
    if labels:
        ys = list(range(len(labels)))
        ax.errorbar(values, ys, xerr=[lows, highs], fmt="none", ecolor="#333333", capsize=2, linewidth=1)
        ax.scatter(values, ys, c=colours, zorder=3, label="accuracy (grey: too small to judge)")
        overall = _test_metric(card, "accuracy")
        if overall is not None:
            ax.axvline(overall, color="#d62728", linestyle="--", linewidth=1, label=f"overall {number(overall)}")
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        fig.legend(loc="lower center", ncol=2, frameon=False)
    else:
        _note(ax, "no slice columns configured")
    ax.set_title("Accuracy per slice (95 % interval)")
    return _png(fig)


def _plot_importance(card: dict[str, Any]) -> bytes:
    imp = card["quantitative_analysis"].get("importance") or {}
    rows = sorted((imp.get("features") or {}).items(), key=lambda kv: (-kv[1]["mean"], kv[0]))[:20]
    left = 0.25 + 0.065 * max((len(f) for f, _ in rows), default=4)
    fig, ax = _figure(6.0, max(2.0, 0.3 * len(rows) + 1.0), left=left, bottom=0.5)
    if rows:
        ys = list(range(len(rows)))
        ax.barh(ys, [v["mean"] for _, v in rows], xerr=[v["std"] for _, v in rows], color="#1f77b4", capsize=2)
        ax.set_yticks(ys, [f for f, _ in rows])
        ax.invert_yaxis()
        ax.set_xlabel(f"drop in test {imp.get('scoring')} when shuffled")
    else:
        _note(ax, "not computed: only a promoted model has a reference profile")
    ax.set_title("Permutation importance (top 20)")
    return _png(fig)
