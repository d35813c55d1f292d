"""The report as text: a README-ready Markdown leaderboard and report, and a booktabs LaTeX table.

Cell convention (Markdown and LaTeX): ``value [ci_low, ci_high] (rank)``; the best value
per metric in bold; ``†``: not significantly better than ``random`` (one-sided Wilcoxon,
Holm); ``≈``/underline: not significantly different from the best (Wilcoxon, Holm);
control maps (``random``, ``sobel``, ``constant``) in italics, marked *(control)*.
"""
from __future__ import annotations

import math

import pandas as pd

from harness.report.leaderboard import REFERENCE, Report

ARROW = {"higher": "↑", "lower": "↓"}


def _num(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _rank(value: float) -> str:
    return "–" if value != value else f"{value:g}"


def _cells(report: Report, row: pd.Series, metric: str) -> tuple[str, bool, bool, bool]:
    """(text, best, near best, flagged) of one leaderboard cell."""
    part = report.summary[(report.summary["metric"] == metric) & (report.summary["method"] == row["method"])].iloc[0]
    text = f"{_num(part['value'])} [{_num(part['ci_low'])}, {_num(part['ci_high'])}] ({_rank(part['rank'])})"
    flagged = row["method"] != REFERENCE and part["beats_random"] == 0
    return text, part["rank"] == 1 or part["rank"] == report.summary[report.summary["metric"] == metric]["rank"].min(), bool(part["near_best"]), flagged


def markdown_leaderboard(report: Report) -> str:
    """Methods x metrics, the mean rank last, sorted by mean rank (see the module docstring for the marks)."""
    heads = [f"{m} {ARROW[report.collection.better[m]]}" for m in report.metrics]
    spread = report.blocks["block"].nunique() > 1
    lines = ["| method | " + " | ".join(heads) + " | mean rank |" + (" rank range |" if spread else ""),
             "|---|" + "---|" * len(heads) + "---|" + ("---|" if spread else "")]
    for _, row in report.wide.iterrows():
        name = f"*{row['method']}* (control)" if row["control"] else row["method"]
        cells = []
        for metric in report.metrics:
            text, best, near, flagged = _cells(report, row, metric)
            text = f"**{text}**" if best else (f"≈ {text}" if near else text)
            cells.append(text + (" †" if flagged else ""))
        tail = f" {_num(row['mean_rank_min'], 1)}–{_num(row['mean_rank_max'], 1)} |" if spread else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_num(row['mean_rank'], 2)} |" + tail)
    return "\n".join(lines)


def markdown_significance(report: Report, metric: str) -> str:
    """One metric's pairwise matrix: ▲ row better, ▼ row worse, · not distinguishable (Wilcoxon, Holm)."""
    pairs = report.pairs[report.pairs["metric"] == metric].set_index(["a", "b"])
    methods = list(report.wide["method"])
    groups = report.summary[report.summary["metric"] == metric].set_index("method")["group"]
    lines = ["| " + metric + " | " + " | ".join(methods) + " | group |", "|---|" + "---|" * len(methods) + "---|"]
    for a in methods:
        cells = []
        for b in methods:
            if a == b:
                cells.append("")
                continue
            row = pairs.loc[(a, b)]
            cells.append(("▲" if row["gain"] > 0 else "▼") if row["significant"] else "·")
        lines.append(f"| {a} | " + " | ".join(cells) + f" | {groups[a]} |")
    return "\n".join(lines) + "\n\n" + friedman_line(report, metric)


def friedman_line(report: Report, metric: str) -> str:
    """One line: Friedman's test of the metric and what the letters mean."""
    row = report.friedman.set_index("metric").loc[metric]
    if row["chi2"] != row["chi2"]:
        return f"{metric}: Friedman's test needs 3 or more methods and 2 complete units; groups from the pairwise tests alone."
    verdict = ("the methods differ" if row["significant"] else "no difference between the methods is shown, so every method gets the letter a")
    return (f"{metric}: Friedman χ² = {row['chi2']:.2f}, p = {row['p']:.3g} ({int(row['units'])} units, {int(row['methods'])} methods): "
            f"{verdict}. Methods sharing a letter are not significantly different (Holm, α = {report.alpha}); a holds the best.")


def markdown_header(report: Report) -> str:
    header = report.header
    if header.empty:
        return ""
    extra = [f"{m} (eval)" for m in report.model_level]
    heads = ["model", "dataset", "seeds", "test accuracy", "worst-group accuracy", "BG-gap (test split)", "chance"]  # mean (range) over seeds
    heads += [f"{m} (eval samples)" for m in report.model_level]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for _, row in header.iterrows():
        n_test = "" if row["n_test"] is None or row["n_test"] != row["n_test"] else f" (n = {int(row['n_test'])})"
        spread = lambda key: _num(row[key]) + (f" ({_num(row[key + '_min'])}–{_num(row[key + '_max'])})" if row["seeds"] > 1 else "")
        cells = [row["model"], row["dataset"], str(row["seeds"]), spread("test_accuracy"), spread("worst_group_accuracy"),
                 spread("bg_gap") + n_test, _num(row["chance"])]
        cells += [f"{_num(row[e])} (n = {int(row[e.replace(' (eval)', '_n (eval)')])})" for e in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(report: Report, figures: list[str]) -> str:
    """The whole report: header, warnings, leaderboard, significance, agreement, figures."""
    c = report.collection
    used = len(c.runs)
    parts = [f"# Report: {c.kind} {c.source}", "",
             f"{used} runs, {len(report.methods)} methods, {len(report.metrics)} metrics"
             + (f", aggregated over {', '.join(report.varies)}" if report.varies else "") + f". {report.ci_kind}.", "",
             "## Models", "", markdown_header(report), "",
             "BG-gap (test split) is the model's, on every image of the test split (`test_accuracy/bg_gap`); the "
             "`background_gap` metric uses the same per-image definition (`metrics.background_gap.background_gap`) on the "
             "evaluated samples only, so the two differ by sampling. Metrics that give every method the same scores "
             "(they do not use the attributions) are shown here and not ranked.", ""]
    if report.warnings:
        parts += ["## Warnings", ""] + [f"- {line}" for line in report.warnings] + [""]
    parts += ["## Leaderboard", "", markdown_leaderboard(report), "",
              "Cells: value [95 % CI] (rank; 1 = best, ↑/↓ the direction of better). **bold**: best; ≈: not significantly "
              f"different from the best; †: not significantly better than `{REFERENCE}` (one-sided Wilcoxon signed-rank, Holm, "
              f"α = {report.alpha}); *italics*: control maps."
              + (f" Rank range: the mean rank's lowest and highest over the blocks ({', '.join(report.varies)})." if report.varies else ""), "",
              *(["### What each model learned: class prototypes", "",
                 "Each class's prototype: the input that maximises the class's logit, from the dataset's mean image under a small "
                 "L2 and total-variation penalty with random jitter (activation maximisation, `harness.report.prototypes`).", "",
                 "![prototypes](prototypes.png)", ""] if "prototypes.png" in figures else []),
              "## Significance", "",
              "Paired Wilcoxon signed-rank tests on the same samples, Holm-corrected per metric"
              + (f", stratified by block ({', '.join(report.varies)}): differences ranked within each block and the blocks' "
                 "statistics summed (samples differ between blocks, so they are not averaged over them)" if report.varies else "")
              + ". ▲: the row is significantly better than the column, ▼: worse, ·: not distinguishable. *group*: the compact "
              "letter display (Piepho 2004) of these tests, after Friedman's test over all methods (Demšar 2006).", ""]
    for metric in report.metrics:
        parts += [markdown_significance(report, metric), ""]
    parts += ["## Agreement", ""] + [f"- {line}" for line in report.agreement["verdict"]] + [""]
    if figures:
        parts += ["## Figures", ""] + [f"![{name}]({name})" for name in figures if name != "prototypes.png"] + [""]
    return "\n".join(parts)


def _tex(text: str) -> str:
    return str(text).replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&").replace("#", "\\#").replace("–", "--")


def latex_leaderboard(report: Report) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``): best per column bold, not distinguishable from the best underlined, † as in Markdown."""
    cols = "l" + "c" * len(report.metrics) + "c"
    arrows = {"higher": "$\\uparrow$", "lower": "$\\downarrow$"}
    heads = " & ".join(f"{_tex(m)} {arrows[report.collection.better[m]]}" for m in report.metrics)
    lines = [f"\\begin{{tabular}}{{{cols}}}", "\\toprule", f"method & {heads} & mean rank \\\\", "\\midrule"]
    for _, row in report.wide.iterrows():
        name = f"\\textit{{{_tex(row['method'])}}}" if row["control"] else _tex(row["method"])
        cells = []
        for metric in report.metrics:
            text, best, near, flagged = _cells(report, row, metric)
            text = _tex(text)
            text = f"\\textbf{{{text}}}" if best else (f"\\underline{{{text}}}" if near else text)
            cells.append(text + ("$^\\dagger$" if flagged else ""))
        lines.append(f"{name} & " + " & ".join(cells) + f" & {_num(row['mean_rank'], 2)} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
