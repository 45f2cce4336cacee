"""Reports of a search: a table per variant, Welch's t-tests against the baseline, a
hyperparameter-importance analysis, and box/strip plots in the style of Greff et al.
2017, Figure 3.

`python -m tuning report RUN_DIR` reads RUN_DIR/project/trial_*/trial.json (written by
keras-tuner, whichever process ran the trial) and writes RUN_DIR/report/: `report.md`
(the tables), `report.json` (every number), `ablation.png` and `importance.png`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from scipy import stats
from sklearn.ensemble import RandomForestRegressor

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tuning.search import PROJECT  # noqa: E402

LOG_SCALE_HYPERPARAMETERS = ("learning_rate", "units")
FAILED = ("FAILED", "INVALID")  # finished without a usable metric (RUNNING: not finished)
_MAXIMISED = ("accuracy", "f1", "bleu", "auc", "precision", "recall")


@dataclasses.dataclass
class TrialRecord:
    """One trial: its hyperparameter values, status and reported metrics."""

    trial_id: str
    status: str
    values: dict[str, Any]
    metrics: dict[str, float]
    score: float | None = None
    message: str = ""

    @property
    def cell(self) -> str:
        return str(self.values.get("cell", "?"))


def _last_observation(entry: dict) -> float | None:
    observations = entry.get("observations") or []
    if not observations:
        return None
    value = observations[-1].get("value")
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else float(value)


def read_trial(path: Path) -> TrialRecord:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    metrics = {}
    for name, entry in (data.get("metrics") or {}).get("metrics", {}).items():
        value = _last_observation(entry)
        if value is not None:
            metrics[name] = value
    return TrialRecord(
        trial_id=str(data.get("trial_id")),
        status=str(data.get("status")),
        values=dict((data.get("hyperparameters") or {}).get("values", {})),
        metrics=metrics,
        score=data.get("score"),
        message=data.get("message") or "",
    )


def load_trials(run_dir: str | Path) -> list[TrialRecord]:
    """Every trial of the search in RUN_DIR (sorted by trial id)."""
    project = Path(run_dir) / PROJECT
    paths = sorted(project.glob("trial_*/trial.json"))
    if not paths:
        raise FileNotFoundError(
            f"{run_dir}: no trials (expected {project}/trial_*/trial.json); run "
            "`python -m tuning search --run-dir ...` first"
        )
    return [read_trial(path) for path in paths]


def metric_direction(metric: str, objective: str | None = None) -> str:
    base = metric.removeprefix("val_").removeprefix("test_")
    if any(word in base for word in _MAXIMISED):
        return "max"
    return "min"


def default_metric(records: Sequence[TrialRecord], objective: str) -> str:
    """The test metric matching the objective when every completed trial has one (the
    number Greff et al. report), otherwise the objective itself."""
    completed = [record for record in records if record.status == "COMPLETED"]
    base = objective.removeprefix("val_")
    test_name = f"test_{base}"
    if completed and all(test_name in record.metrics for record in completed):
        return test_name
    return objective


def _values(records: Sequence[TrialRecord], metric: str) -> np.ndarray:
    return np.array(
        [
            record.metrics[metric]
            for record in records
            if record.status == "COMPLETED"
            and metric in record.metrics
            and math.isfinite(record.metrics[metric])
        ],
        dtype=float,
    )


def welch_t_test(sample: Sequence[float], baseline: Sequence[float]) -> tuple[float, float]:
    """Welch's unequal-variance t statistic and two-sided p value (NaN below 2 each)."""
    sample, baseline = np.asarray(sample, float), np.asarray(baseline, float)
    if len(sample) < 2 or len(baseline) < 2:
        return math.nan, math.nan
    result = stats.ttest_ind(sample, baseline, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def _top(
    records: list[TrialRecord], fraction: float, selection: str, direction: str
) -> list[TrialRecord]:
    usable = [
        r
        for r in records
        if r.status == "COMPLETED" and math.isfinite(r.metrics.get(selection, math.nan))
    ]
    usable.sort(key=lambda r: r.metrics[selection], reverse=direction == "max")
    return usable[: max(1, math.ceil(fraction * len(usable)))] if usable else []


def variant_table(
    records: Sequence[TrialRecord],
    metric: str,
    baseline: str = "vanilla",
    alpha: float = 0.05,
    top_fraction: float = 0.1,
    selection: str | None = None,
    cells: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per variant: trials, failures, best/median/mean/spread of `metric`, median
    parameter count, mean trial wall time, and Welch's t-test against `baseline` over all
    completed trials (and over the best `top_fraction` by `selection`)."""
    direction = metric_direction(metric)
    selection = selection or metric
    by_cell: dict[str, list[TrialRecord]] = {}
    for record in records:
        by_cell.setdefault(record.cell, []).append(record)
    order = [c for c in (cells or []) if c in by_cell] + sorted(
        c for c in by_cell if c not in (cells or [])
    )
    if baseline in order:
        order.remove(baseline)
        order.insert(0, baseline)
    baseline_values = _values(by_cell.get(baseline, []), metric)
    baseline_top = _values(
        _top(by_cell.get(baseline, []), top_fraction, selection, metric_direction(selection)),
        metric,
    )
    rows = []
    for cell in order:
        group = by_cell[cell]
        values = _values(group, metric)
        top_values = _values(
            _top(group, top_fraction, selection, metric_direction(selection)), metric
        )
        params = [r.metrics["param_count"] for r in group if "param_count" in r.metrics]
        walls = [r.metrics["trial_wall_time_s"] for r in group if "trial_wall_time_s" in r.metrics]
        row: dict[str, Any] = {
            "variant": cell,
            "trials": sum(r.status == "COMPLETED" or r.status in FAILED for r in group),
            "completed": int(len(values)),
            "failed": sum(r.status in FAILED for r in group),
            "best": _stat(values, (np.min if direction == "min" else np.max)),
            "median": _stat(values, np.median),
            "mean": _stat(values, np.mean),
            "std": _stat(values, lambda v: np.std(v, ddof=1) if len(v) > 1 else math.nan),
            "q25": _stat(values, lambda v: np.percentile(v, 25)),
            "q75": _stat(values, lambda v: np.percentile(v, 75)),
            "top_mean": _stat(top_values, np.mean),
            "parameters_median": float(np.median(params)) if params else math.nan,
            "trial_wall_time_mean_s": float(np.mean(walls)) if walls else math.nan,
            "t": math.nan,
            "p": math.nan,
            "significant": False,
            "verdict": "baseline" if cell == baseline else "",
            "top_t": math.nan,
            "top_p": math.nan,
        }
        if cell != baseline and len(baseline_values):
            t, p = welch_t_test(values, baseline_values)
            difference = np.mean(values) - np.mean(baseline_values) if len(values) else math.nan
            worse = difference > 0 if direction == "min" else difference < 0
            row.update(t=t, p=p, significant=bool(p < alpha))
            row["verdict"] = (
                (("worse" if worse else "better") if p < alpha else "n.s.")
                if math.isfinite(p)
                else "n/a"
            )
            row["top_t"], row["top_p"] = welch_t_test(top_values, baseline_top)
        rows.append(row)
    return rows


def _stat(values: np.ndarray, function) -> float:
    return float(function(values)) if len(values) else math.nan


# --------------------------------------------------------------------------------------
# Hyperparameter importance


def _design_matrix(records: Sequence[TrialRecord], names: Sequence[str]):
    columns, kinds = [], {}
    for name in names:
        raw = [record.values.get(name) for record in records]
        present = [value for value in raw if value is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if numeric:
            column = np.array([math.nan if v is None else float(v) for v in raw])
            if name in LOG_SCALE_HYPERPARAMETERS and np.nanmin(column) > 0:
                column = np.log10(column)
            kinds[name] = "numeric"
        else:
            categories = sorted({str(v) for v in present})
            column = np.array(
                [math.nan if v is None else categories.index(str(v)) for v in raw], float
            )
            kinds[name] = "categorical"
        column = np.where(
            np.isnan(column),
            -1.0 if kinds[name] == "categorical" else np.nanmin(column) - 1.0,
            column,
        )
        columns.append(column)
    return np.stack(columns, axis=1), kinds


def hyperparameter_importance(
    records: Sequence[TrialRecord], metric: str, seed: int = 0, bins: int = 5
) -> list[dict[str, Any]]:
    """Variance of `metric` explained by each hyperparameter, two ways:

    - `rf_main_effect`: a functional-ANOVA-style first-order effect (Hutter et al. 2014,
      used by Greff et al.): a random forest is fitted to (values -> metric); the main
      effect of a hyperparameter is the variance of the forest's prediction marginalised
      over all other hyperparameters (partial dependence over the observed trials),
      divided by the variance of its predictions.
    - `marginal_variance`: the correlation ratio eta^2 = between-group variance / total
      variance, grouping the trials by the hyperparameter's value (numeric ones in
      `bins` quantile bins). Model-free; inflated for small samples.

    Only completed trials with a finite metric count, and only hyperparameters that took
    more than one value. Sorted by `rf_main_effect`.
    """
    usable = [
        r
        for r in records
        if r.status == "COMPLETED" and math.isfinite(r.metrics.get(metric, math.nan))
    ]
    if len(usable) < 4:
        return []
    names = sorted({name for r in usable for name in r.values if not name.startswith("tuner/")})
    names = [n for n in names if len({json.dumps(r.values.get(n)) for r in usable}) > 1]
    if not names:
        return []
    x, kinds = _design_matrix(usable, names)
    y = np.array([r.metrics[metric] for r in usable])
    main_effects = _forest_main_effects(x, y, kinds, names, seed)
    rows = []
    for index, name in enumerate(names):
        rows.append(
            {
                "hyperparameter": name,
                "kind": kinds[name],
                "rf_main_effect": main_effects[index],
                "marginal_variance": _eta_squared(x[:, index], y, kinds[name], bins),
            }
        )
    rows.sort(key=lambda r: -r["rf_main_effect"])
    return rows


def _eta_squared(column: np.ndarray, y: np.ndarray, kind: str, bins: int) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return 0.0
    if kind == "numeric" and len(np.unique(column)) > bins:
        edges = np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1])
        groups = np.searchsorted(edges, column, side="right")
    else:
        groups = column
    between = sum(
        np.sum(groups == g) * (y[groups == g].mean() - y.mean()) ** 2 for g in np.unique(groups)
    )
    return float(between / total)


def _forest_main_effects(x, y, kinds, names, seed, grid_size: int = 24) -> list[float]:
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed)
    forest.fit(x, y)
    predictions = forest.predict(x)
    total = float(np.var(predictions))
    effects = []
    for index, name in enumerate(names):
        column = x[:, index]
        if kinds[name] == "categorical" or len(np.unique(column)) <= grid_size:
            grid, counts = np.unique(column, return_counts=True)
            weights = counts / counts.sum()
        else:
            grid = np.quantile(column, (np.arange(grid_size) + 0.5) / grid_size)
            weights = np.full(grid_size, 1.0 / grid_size)
        marginal = []
        for value in grid:
            modified = x.copy()
            modified[:, index] = value
            marginal.append(forest.predict(modified).mean())
        marginal = np.array(marginal)
        mean = np.sum(weights * marginal)
        variance = float(np.sum(weights * (marginal - mean) ** 2))
        effects.append(variance / total if total > 0 else 0.0)
    return effects


# --------------------------------------------------------------------------------------
# Plots


def plot_ablation(
    samples: dict[str, np.ndarray],
    top_samples: dict[str, np.ndarray],
    parameters: dict[str, list[float]],
    rows: list[dict[str, Any]],
    path: Path,
    title: str,
    metric_label: str,
    top_fraction: float = 0.1,
    reference: float | None = None,
) -> Path:
    """Greff et al. 2017, Figure 3: per variant, a box (25th-75th percentile), whiskers
    over the whole range, the median (line) and mean (red dot), every trial as a point;
    top: all trials, middle: the best `top_fraction` (by validation), bottom: parameter
    counts. Variants significantly different from the baseline are blue, thick."""
    variants = [row["variant"] for row in rows]
    significant = {row["variant"] for row in rows if row["significant"]}
    figure, axes = plt.subplots(
        3,
        1,
        figsize=(max(6.0, 0.85 * len(variants) + 2), 9.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 3, 1.6]},
    )
    rng = np.random.default_rng(0)
    panels = [
        (samples, f"{metric_label}: all trials"),
        (top_samples, f"{metric_label}: best {top_fraction:.0%}"),
        ({v: np.asarray(parameters.get(v, []), float) for v in variants}, "parameters"),
    ]
    every = np.concatenate([np.asarray(v, float) for v in samples.values()] or [np.ones(1)])
    log_scale = bool(len(every)) and every.min() > 0 and every.max() / every.min() > 100
    for axis, (data, label) in zip(axes, panels):
        if log_scale and label != "parameters":  # e.g. MSEs from 1e-4 to the chance level
            axis.set_yscale("log")
        for position, variant in enumerate(variants, start=1):
            values = np.asarray(data.get(variant, []), float)
            if not len(values):
                continue
            emphasised = variant in significant and label != "parameters"
            colour = "tab:blue" if emphasised else "black"
            width = 2.4 if emphasised else 1.0
            axis.boxplot(
                values,
                positions=[position],
                widths=0.55,
                whis=(0, 100),
                showfliers=False,
                boxprops=dict(color=colour, linewidth=width),
                whiskerprops=dict(color=colour, linewidth=width),
                capprops=dict(color=colour, linewidth=width),
                medianprops=dict(color=colour, linewidth=width + 0.6),
            )
            jitter = rng.uniform(-0.16, 0.16, size=len(values))
            axis.scatter(position + jitter, values, s=9, color="0.45", alpha=0.55, zorder=3)
            axis.scatter([position], [values.mean()], s=36, color="red", zorder=4)
        axis.set_ylabel(label)
        axis.grid(True, axis="y", alpha=0.3)
        if reference is not None and label != "parameters":
            axis.axhline(reference, color="grey", linestyle="--", linewidth=1)
    axes[-1].set_xticks(range(1, len(variants) + 1))
    axes[-1].set_xticklabels([v.upper() if v != "vanilla" else "V" for v in variants])
    axes[0].set_title(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_importance(importance: list[dict[str, Any]], path: Path, title: str) -> Path:
    names = [row["hyperparameter"] for row in importance][::-1]
    forest = [row["rf_main_effect"] for row in importance][::-1]
    marginal = [row["marginal_variance"] for row in importance][::-1]
    positions = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.5))
    axis.barh(
        positions + 0.2, np.nan_to_num(forest), height=0.38, label="RF main effect (fANOVA-style)"
    )
    axis.barh(
        positions - 0.2, marginal, height=0.38, label="marginal variance (eta^2)", color="0.6"
    )
    axis.set_yticks(positions)
    axis.set_yticklabels(names)
    axis.set_xlabel("fraction of variance explained")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(True, axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# --------------------------------------------------------------------------------------
# Formatting and the whole report


def _format(value: float, digits: int = 3) -> str:
    """`digits` decimals, or 3 significant digits for small values (MSE 0.00042)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value != 0 and abs(value) < 0.1:
        return f"{value:.2e}" if abs(value) < 1e-4 else f"{value:.3g}"
    return f"{value:.{digits}f}"


def format_p(p: float) -> str:
    if not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def format_table(rows: list[dict[str, Any]], metric: str, baseline: str, alpha: float) -> str:
    """The per-variant table in Markdown."""
    header = (
        f"| variant | trials | failed | best {metric} | median | mean | std | IQR | "
        f"parameters (median) | s/trial | p vs {baseline} (Welch) | verdict |"
    )
    lines = [header, "|" + "---|" * 12]
    for row in rows:
        lines.append(
            "| {variant} | {completed} | {failed} | {best} | {median} | {mean} | {std} | "
            "{q25}-{q75} | {params} | {wall} | {p} | {verdict} |".format(
                variant=row["variant"],
                completed=row["completed"],
                failed=row["failed"],
                best=_format(row["best"]),
                median=_format(row["median"]),
                mean=_format(row["mean"]),
                std=_format(row["std"]),
                q25=_format(row["q25"]),
                q75=_format(row["q75"]),
                params=f"{row['parameters_median']:,.0f}"
                if math.isfinite(row["parameters_median"])
                else "-",
                wall=_format(row["trial_wall_time_mean_s"], 1),
                p=format_p(row["p"]),
                verdict=("**" + row["verdict"] + "**") if row["significant"] else row["verdict"],
            )
        )
    lines.append(
        f"\nverdict: significantly `worse`/`better` than {baseline} (Welch's t-test on all "
        f"completed trials, p < {alpha}), or `n.s.`"
    )
    return "\n".join(lines)


def format_importance(importance: list[dict[str, Any]]) -> str:
    lines = [
        "| hyperparameter | RF main effect (fANOVA-style) | marginal variance (eta^2) |",
        "|---|---|---|",
    ]
    for row in importance:
        lines.append(
            f"| {row['hyperparameter']} | {_format(row['rf_main_effect'], 2)} | "
            f"{_format(row['marginal_variance'], 2)} |"
        )
    return "\n".join(lines)


def read_search(run_dir: Path) -> tuple[dict, list[dict]]:
    config_path = run_dir / "search.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    sessions_path = run_dir / "sessions.jsonl"
    sessions = []
    if sessions_path.exists():
        sessions = [
            json.loads(line) for line in sessions_path.read_text().splitlines() if line.strip()
        ]
    return config, sessions


def _timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def search_wall_time(sessions: list[dict], run_dir: Path, created: str | None = None) -> float:
    """Seconds the search's invocations ran (several workers: the sum of their times;
    chiefs, which only wait for workers, excluded). An invocation that was killed (a start
    line without an end line) counts until the last trial it finished (`worker.json`); trials
    finished before the first recorded start count from `created` (search.json)."""
    finished = []
    for path in (run_dir / PROJECT).glob("trial_*/worker.json"):
        try:
            finished.append(_timestamp(json.loads(path.read_text())["finished"]))
        except (ValueError, KeyError):
            continue
    finished.sort()
    workers = [line for line in sessions if line.get("role") != "chief"]
    durations = {
        line.get("session"): line.get("wall_time_s", 0.0)
        for line in workers
        if line.get("event", "end") == "end"
    }
    starts = sorted(
        (_timestamp(line["start"]), line.get("session"))
        for line in workers
        if line.get("event") == "start" and "start" in line
    )
    if finished and created and (not starts or finished[0] < starts[0][0]):
        starts.insert(0, (_timestamp(created), None))
    total = sum(value for key, value in durations.items() if key is None)  # old end-only lines
    for index, (start, session) in enumerate(starts):
        if session is not None and session in durations:
            total += durations[session]
            continue
        next_start = starts[index + 1][0] if index + 1 < len(starts) else math.inf
        inside = [moment for moment in finished if start <= moment < next_start]
        if inside:
            total += inside[-1] - start
    return total


def objective_of(config: dict) -> tuple[str, str, str, float | None]:
    """(objective, label, description, chance level) of the search in `config` (the
    contents of search.json)."""
    from tuning.adapters import adapter_class

    recorded = config.get("objective", "")
    try:
        adapter = adapter_class(config.get("task", ""))
        task_config = adapter.make_config(
            config.get("task_config") or {}, config.get("run_dir", ""),
            config.get("seed", 0), 0, "default",
        )
    except ValueError:  # not a search of this version: name what search.json says
        objective = recorded or "val_loss"
        return objective, objective.removeprefix("val_"), str(config.get("task", "")), None
    default = adapter.objective or task_config.monitor
    objective = recorded or default
    label = adapter.metric_label if objective == default else objective.removeprefix("val_")
    return objective, label, adapter.description, adapter.chance_level(task_config)


def build_report(
    run_dir: str | Path,
    metric: str = "",
    baseline: str = "vanilla",
    alpha: float = 0.05,
    top_fraction: float = 0.1,
    output: str | Path = "",
    title: str = "",
) -> dict[str, Any]:
    """Writes report.md, report.json, ablation.png and importance.png; returns the report."""
    run_dir = Path(run_dir)
    output = Path(output) if output else run_dir / "report"
    records = load_trials(run_dir)
    config, sessions = read_search(run_dir)
    if config:
        objective, label, description, reference = objective_of(config)
    else:
        objective, label, description, reference = "val_loss", "loss", str(run_dir), None
    metric = metric or default_metric(records, objective)
    cells = (config.get("space") or {}).get("cells")
    rows = variant_table(
        records, metric, baseline, alpha, top_fraction, selection=objective, cells=cells
    )
    importance = hyperparameter_importance(records, metric)
    by_cell: dict[str, list[TrialRecord]] = {}
    for record in records:
        by_cell.setdefault(record.cell, []).append(record)
    samples = {cell: _values(group, metric) for cell, group in by_cell.items()}
    top_samples = {
        cell: _values(_top(group, top_fraction, objective, metric_direction(objective)), metric)
        for cell, group in by_cell.items()
    }
    parameters = {
        cell: [r.metrics["param_count"] for r in group if "param_count" in r.metrics]
        for cell, group in by_cell.items()
    }
    wall_time = search_wall_time(sessions, run_dir, config.get("created"))
    trial_time = sum(r.metrics.get("trial_wall_time_s", 0.0) for r in records)
    title = title or f"{description}\n{metric}, {len(records)} trials"
    plot = plot_ablation(
        samples,
        top_samples,
        parameters,
        rows,
        output / "ablation.png",
        title,
        metric_label=f"{label} ({metric})",
        top_fraction=top_fraction,
        reference=reference if metric.endswith(objective.removeprefix("val_")) else None,
    )
    importance_plot = (
        plot_importance(
            importance, output / "importance.png", f"Hyperparameter importance ({metric})"
        )
        if importance
        else None
    )
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.status] = statuses.get(record.status, 0) + 1
    report = {
        "run_dir": str(run_dir),
        "task": config.get("task"),
        "metric": metric,
        "objective": objective,
        "baseline": baseline,
        "alpha": alpha,
        "top_fraction": top_fraction,
        "trials": statuses,
        "variants": rows,
        "importance": importance,
        "search_wall_time_s": round(wall_time, 1),
        "trial_time_sum_s": round(trial_time, 1),
        "sessions": sessions,
        "plot": str(plot),
        "importance_plot": str(importance_plot) if importance_plot else None,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    markdown = "\n\n".join(
        [
            f"# {description}",
            f"{sum(statuses.values())} trials ({', '.join(f'{v} {k}' for k, v in sorted(statuses.items()))}); "
            f"metric `{metric}`; search wall time {wall_time / 60:.1f} min",
            format_table(rows, metric, baseline, alpha),
            "## Hyperparameter importance\n\n"
            + (format_importance(importance) if importance else "(too few trials)"),
            f"![ablation]({plot.name})",
        ]
    )
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.md").write_text(markdown + "\n", encoding="utf-8")
    (output / "report.json").write_text(
        json.dumps(_plain(report), indent=2) + "\n", encoding="utf-8"
    )
    report["markdown"] = markdown
    return report


def benchmark_figures(report: dict[str, Any], name: str, command: str) -> dict[str, Any]:
    """Flat figures for benchmarks/results/<name>.json."""
    figures: dict[str, Any] = {
        "name": name,
        "task": report["task"],
        "metric": report["metric"],
        "baseline": report["baseline"],
        "trials_completed": report["trials"].get("COMPLETED", 0),
        "trials_failed": report["trials"].get("FAILED", 0),
    }
    for row in report["variants"]:
        variant = row["variant"]
        for key in (
            "completed",
            "best",
            "median",
            "mean",
            "std",
            "p",
            "parameters_median",
            "trial_wall_time_mean_s",
        ):
            figures[f"{variant}_{key}"] = row[key]
        figures[f"{variant}_verdict"] = row["verdict"]
    for row in report["importance"]:
        figures[f"importance_{row['hyperparameter']}_rf"] = row["rf_main_effect"]
        figures[f"importance_{row['hyperparameter']}_eta2"] = row["marginal_variance"]
    sessions = report.get("sessions") or []
    figures.update(
        command=command or (sessions[0].get("command", "") if sessions else ""),
        date=datetime.date.today().isoformat(),
        wall_time_s=report["search_wall_time_s"],
        machine=(sessions[-1].get("machine") if sessions else ""),
    )
    return _plain(figures)


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
