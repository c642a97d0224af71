"""The report's figures, drawn with matplotlib's Agg renderer from the panel data of ``report.data``.

Each ``fig_*`` function returns a ``matplotlib.figure.Figure`` (no pyplot, no global state), or None
when its panel has no data. ``save`` writes the PNG with the exact numbers it plots in the PNG text
chunk ``warriorflow-data`` (JSON), so a reader, or a test, can check what a figure shows.
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DATA_KEY = "warriorflow-data"
DPI = 100
_GREY = "#9e9e9e"


def save(fig: Figure, path: Path, plotted: dict) -> Path:
    fig.savefig(path, format="png", dpi=DPI,
                metadata={DATA_KEY: json.dumps(plotted, sort_keys=True, default=str), "Software": "warriorflow"})
    return path


def _fig(width: float = 7.5, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg renderer, attached explicitly: no pyplot, no backend switching
    return fig


def _version_axis(ax, versions: list[dict]) -> None:
    """x = rating version number, oldest first; with few versions each tick also shows its date."""
    n = len(versions)
    if n <= 8:
        ax.set_xticks(range(1, n + 1), [f"{k}\n{v['computed_at'][5:16]}" for k, v in enumerate(versions, 1)],
                      fontsize=8)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, n + 0.5)
    ax.set_xlabel("rating version (oldest first)")


# ------------------------------------------------------------------------------------------ arena


def fig_win_rates(d: dict) -> tuple[Figure, dict] | None:
    """Heatmap: row expert's win rate against the column expert (ties count half), with battle counts."""
    import numpy as np

    experts = d["experts"]
    if not experts or d["battles"] == 0:
        return None
    m = len(experts)
    grid = np.array([[np.nan if x is None else x for x in row] for row in d["rates"]], dtype=float)
    fig = _fig(max(5.0, 1.3 * m + 2.5), max(4.0, 1.1 * m + 1.5))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(m), experts, rotation=30, ha="right")
    ax.set_yticks(range(m), experts)
    ax.set_xlabel("opponent")
    ax.set_ylabel("expert")
    for i in range(m):
        for j in range(m):
            if d["rates"][i][j] is not None:
                ax.text(j, i, f"{d['rates'][i][j]:.0%}\nn={d['counts'][i][j]}", ha="center", va="center",
                        fontsize=8)
    fig.colorbar(im, ax=ax, label="win rate (ties count half)")
    ax.set_title(f"Pairwise win rate ({d['battles']} battles)")
    return fig, {"experts": experts, "rates": d["rates"], "counts": d["counts"]}


def fig_elo(d: dict) -> tuple[Figure, dict] | None:
    """Elo per expert after each rating version, over time."""
    if not d["versions"]:
        return None
    fig = _fig()
    ax = fig.add_subplot()
    plotted = {}
    for expert, pts in d["series"].items():
        xs = [p["version"] + 1 for p in pts]
        ys = [p["rating"] for p in pts]
        ax.plot(xs, ys, marker="o", label=expert)
        plotted[expert] = ys
    _version_axis(ax, d["versions"])
    ax.set_ylabel("Elo")
    ax.set_title(f"Elo over time ({len(d['versions'])} rating versions)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig, {"versions": [v["rating_version"] for v in d["versions"]], "elo": plotted}


def fig_bt(d: dict) -> tuple[Figure, dict] | None:
    """Bradley-Terry rating per expert per rating version, with its bootstrap 95% CI as a band."""
    if not d["versions"]:
        return None
    fig = _fig()
    ax = fig.add_subplot()
    plotted = {}
    for expert, pts in d["series"].items():
        xs = [p["version"] + 1 for p in pts]
        ys = [p["rating"] for p in pts]
        (line,) = ax.plot(xs, ys, marker="o", label=expert)
        banded = [(x, p["lo"], p["hi"]) for x, p in zip(xs, pts) if p["lo"] is not None and p["hi"] is not None]
        if banded:
            bx, lo, hi = zip(*banded)
            ax.fill_between(bx, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            if len(banded) == 1:  # a band needs two points: show a lone CI as an error bar
                ax.errorbar(bx, ys[-1:], yerr=[[ys[-1] - lo[0]], [hi[0] - ys[-1]]], color=line.get_color(),
                            capsize=4, fmt="none")
        plotted[expert] = {"rating": ys, "lo": [p["lo"] for p in pts], "hi": [p["hi"] for p in pts]}
    _version_axis(ax, d["versions"])
    ax.set_ylabel("Bradley-Terry rating (Elo scale)")
    ax.set_title("Bradley-Terry ratings with bootstrap 95% CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig, {"versions": [v["rating_version"] for v in d["versions"]], "bt": plotted}


def fig_balance(rows: list[dict]) -> tuple[Figure, dict] | None:
    """Attacks and defences per expert (the offensive-defensive balance)."""
    if not rows:
        return None
    import numpy as np

    names = [r["expert"] for r in rows]
    x = np.arange(len(names))
    fig = _fig(max(5.0, 1.2 * len(names) + 2), 3.8)
    ax = fig.add_subplot()
    att = ax.bar(x - 0.2, [r["attacks"] for r in rows], 0.4, label="attacks")
    dfn = ax.bar(x + 0.2, [r["defences"] for r in rows], 0.4, label="defences")
    ax.bar_label(att, fontsize=8)
    ax.bar_label(dfn, fontsize=8)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("battles")
    ax.set_title("Attack / defence balance")
    ax.legend(fontsize=8)
    return fig, {"experts": names, "attacks": [r["attacks"] for r in rows], "defences": [r["defences"] for r in rows]}


def fig_judges(d: dict) -> tuple[Figure, dict] | None:
    """Per judge: position bias (share of decisive verdicts for the first-shown answer), invalid-vote rate
    and agreement with the other judges; Fleiss' kappa of the panel in the title."""
    judges = d["judges"]
    if not judges:
        return None
    names = [j["judge"] for j in judges]
    fig = _fig(10.0, max(2.6, 0.45 * len(names) + 1.6))
    axes = fig.subplots(1, 3, sharey=True)
    plotted = {"judges": names}
    for ax, key, title in zip(axes, ("position_bias", "invalid_rate", "agreement"),
                              ("first-position wins", "invalid-vote rate", "agreement with other judges")):
        values = [j[key] for j in judges]
        bars = ax.barh(range(len(names)), [0.0 if v is None else v for v in values],
                       color=[_GREY if v is None else "C0" for v in values])
        ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.0%}" for v in values], fontsize=8, padding=2)
        ax.set_xlim(0, 1.15)
        ax.set_title(title, fontsize=10)
        plotted[key] = values
    axes[0].axvline(0.5, color="k", linestyle="--", linewidth=1)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    kappa = d["fleiss_kappa"]
    fig.suptitle(f"Judge quality: Fleiss' κ = {'n/a' if kappa is None else f'{kappa:.3f}'} "
                 f"over {d['kappa_items']} battles with ≥ 2 valid votes")
    plotted["fleiss_kappa"] = kappa
    return fig, plotted


# ------------------------------------------------------------------------------------------ instructions


def fig_difficulty(d: dict) -> tuple[Figure, dict] | None:
    """Instructions by rubric level of their median score; every judge score 1-10."""
    if d["instructions"] == 0:
        return None
    fig = _fig(9.0, 3.8)
    left, right = fig.subplots(1, 2)
    names = list(d["levels"])
    colours = ["#1b9e77", "#66a61e", "#e6ab02", "#d95f02", _GREY]
    bars = left.bar(names, [d["levels"][n] for n in names], color=colours[:len(names)])
    left.bar_label(bars, fontsize=8)
    left.tick_params(axis="x", labelrotation=20)
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("instructions")
    left.set_title("Instructions by difficulty level (median score)", fontsize=10)
    scores = [d["scores"][str(s)] for s in range(1, 11)]
    right.bar(range(1, 11), scores, color=["#d95f02"] * 2 + ["#e6ab02"] * 3 + ["#66a61e"] * 3 + ["#1b9e77"] * 2)
    right.set_xticks(range(1, 11))
    right.set_xlabel("score")
    right.set_title(f"Judge scores ({d['invalid_scores']} invalid)", fontsize=10)
    return fig, {"levels": d["levels"], "scores": scores, "invalid_scores": d["invalid_scores"]}


def fig_categories(d: dict) -> tuple[Figure, dict] | None:
    """Valid task tags per category, plus the invalid tags."""
    if d["tagged"] == 0:
        return None
    names = list(d["categories"]) + ["invalid"]
    values = [d["counts"][c] for c in d["categories"]] + [d["invalid"]]
    fig = _fig(7.0, 0.4 * len(names) + 1.5)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(names)), values, color=["C2"] * (len(names) - 1) + [_GREY])
    ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("instructions")
    ax.set_title(f"Task-category mix ({d['tagged']} tagged)")
    return fig, {"categories": names, "counts": values}


def fig_drops(rows: list[dict]) -> tuple[Figure, dict] | None:
    """Dropped records per stage and reason (quarantined batches as stage 'quarantine')."""
    if not rows:
        return None
    labels = [f"{r['stage']}: {r['reason']}" for r in rows]
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    fig = _fig(8.0, 0.35 * len(rows) + 1.5)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(rows)), [r["n"] for r in rows], color=[f"C{stages.index(r['stage']) % 10}" for r in rows])
    ax.bar_label(bars, fontsize=8, padding=2)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("records (quarantine: batches)")
    ax.set_title("Drop reasons per stage")
    return fig, {"labels": labels, "counts": [r["n"] for r in rows]}


def fig_overlap(d: dict) -> tuple[Figure, dict] | None:
    """Histogram of each instruction's best n-gram overlap with each evaluation set."""
    if not d["counts"]:
        return None
    fig = _fig()
    ax = fig.add_subplot()
    for bench, counts in d["counts"].items():
        ax.stairs(counts, d["edges"], label=bench, linewidth=1.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, 1)
    ax.set_xlabel("best n-gram overlap (shared n-grams / the instruction's n-grams)")
    ax.set_ylabel("instructions")
    ax.set_title("Overlap with the evaluation sets")
    ax.legend(fontsize=8)
    return fig, {"edges": d["edges"], "counts": d["counts"]}


# ------------------------------------------------------------------------------------------ retrains


def fig_evals(d: dict) -> tuple[Figure, dict] | None:
    """pass@1 per benchmark for each evaluated model, in the order the models were first evaluated."""
    if not d["series"]:
        return None
    models = d["models"]
    fig = _fig(max(6.0, 0.9 * len(models) + 3), 3.8)
    ax = fig.add_subplot()
    plotted = {}
    for bench, pts in d["series"].items():
        ax.plot([models.index(p["model_ref"]) for p in pts], [p["pass_at_1"] for p in pts], marker="o", label=bench)
        plotted[bench] = {p["model_ref"]: p["pass_at_1"] for p in pts}
    ax.set_xticks(range(len(models)), models, rotation=20, ha="right")
    ax.set_ylabel("pass@1")
    ax.set_title("Model scores across retrains")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig, {"models": models, "pass_at_1": plotted}


FIGURES = {  # file name -> (panel key in the collected data, drawing function)
    "win_rates.png": ("win_rates", fig_win_rates),
    "elo.png": ("elo", fig_elo),
    "bt.png": ("bt", fig_bt),
    "difficulty.png": ("difficulty", fig_difficulty),
    "categories.png": ("categories", fig_categories),
    "drop_reasons.png": ("drop_reasons", fig_drops),
    "overlap.png": ("overlap", fig_overlap),
    "judges.png": ("judges", fig_judges),
    "balance.png": ("balance", fig_balance),
    "evals.png": ("retrains", fig_evals),
}


def draw_all(data: dict, out_dir: Path) -> dict[str, str]:
    """Write every figure that has data; return panel key -> PNG file name."""
    written = {}
    for name, (key, draw) in FIGURES.items():
        made = draw(data[key])
        if made is None:
            continue
        fig, plotted = made
        save(fig, out_dir / name, plotted)
        written[key] = name
    return written
