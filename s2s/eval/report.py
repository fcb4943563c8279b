"""What `s2s evaluate` shows: a console table, and a report folder (report.md, summary.json and PNG plots).

The plots are drawn on `matplotlib.figure.Figure` objects (the Agg canvas),
never through pyplot, so writing a report changes no global state and needs
no display.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from s2s.eval.metrics import wilson_interval
from s2s.files import atomic_folder

REPORT_FILE, SUMMARY_FILE = "report.md", "summary.json"
PLOTS = {"accuracy_by_family": "accuracy_by_family.png", "ttfa_histogram": "ttfa_histogram.png",
         "accuracy_vs_thought_length": "accuracy_vs_thought_length.png", "accuracy_vs_ttfa": "accuracy_vs_ttfa.png"}
NO_JUDGE = "no judge (pass --judge DIR, a character CTC recogniser)"


def pct(value) -> str:
    """A fraction as a percentage with one decimal ("87.5%"); '-' when nothing was measured (None)."""
    return "-" if value is None else f"{value:.1%}"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def num(value, digits: int = 3) -> str:
    """A figure with `digits` decimals; '-' when nothing was measured (None)."""
    return "-" if value is None else f"{value:.{digits}f}"


def fraction(right: int, n: int) -> str:
    """"3/4 (75%)": a count beside its percentage, so a small n is never read as a precise figure; '-' for n = 0."""
    return f"{right}/{n} ({right / n:.0%})" if n else "-"


def format_interval(right: int, n: int) -> str:
    """"3/4 = 75.0%, 95 % CI 30.1% to 95.4%": an accuracy with its Wilson interval, which says how little a few
    questions can tell apart."""
    if n == 0:
        return "0/0: nothing measured"
    low, high = wilson_interval(right / n, n)
    return f"{right}/{n} = {right / n:.1%}, 95 % CI {low:.1%} to {high:.1%}"


def markdown_table(header: list[str], rows: list[list]) -> str:
    """Rows as a Markdown table, for a notebook or a report: cells as given, None as '-', and a '|' inside a cell
    as '/' (it would start a new column)."""
    def cell(value) -> str:
        return "-" if value is None else str(value).replace("|", "/")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows])


def without_examples(summary: dict) -> dict:
    """The summary without the per-example lists of its runs (what --json prints unless --examples)."""
    runs = {name: {k: v for k, v in run.items() if k != "examples"} for name, run in summary.get("runs", {}).items()}
    return {**summary, "runs": runs}


# ---------------------------------------------------------------------- checks made before any model loads
def check_report_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> None:
    if Path(out_dir).exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; choose another --report folder or pass --overwrite")


def read_results(paths) -> list[tuple[str, dict]]:
    """(label, summary) for each result JSON of `s2s evaluate --json` (or a report's summary.json)."""
    results = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"result file not found: {path}; pass files written by s2s evaluate --json")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not JSON ({err.msg} at line {err.lineno}); "
                             "pass files written by s2s evaluate --json") from None
        if not isinstance(data, dict) or "accuracy_thought" not in data or "ttfa_ms_p50" not in data:
            raise ValueError(f"{path} has no accuracy_thought and ttfa_ms_p50; pass files written by "
                             "s2s evaluate --json")
        results.append((data.get("format") or path.stem, data))
    return results


# ---------------------------------------------------------------------- text
def _table(rows: dict, with_text: bool) -> list[str]:
    head = f"{'':20s} {'n':>4s} {'thought':>8s} {'reply':>8s} {'spoken':>8s} {'WER':>7s}"
    head += f" {'text q':>8s} {'chance':>8s}" if with_text else ""
    lines = [head]
    for name, f in rows.items():
        line = (f"{name[:20]:20s} {f['n']:4d} {pct(f['accuracy_thought']):>8s} {pct(f['accuracy_reply_text']):>8s} "
                f"{pct(f['accuracy_spoken']):>8s} {num(f['wer'], 3):>7s}")
        if with_text:
            line += f" {pct(f.get('accuracy_text')):>8s} {pct(f.get('chance')):>8s}"
        lines.append(line)
    return lines


def format_text(summary: dict) -> str:
    """The console report: per family, per voice, overall, latency, and the shortcut test."""
    overall = {"n": summary["n"], "accuracy_thought": summary["accuracy_thought"],
               "accuracy_reply_text": summary["accuracy_reply_text"], "accuracy_spoken": summary["accuracy_spoken"],
               "wer": summary["wer"], "accuracy_text": summary["accuracy_text"], "chance": summary.get("chance")}
    lines = []
    if summary.get("listener"):  # the independent listener's figure comes first
        lines += [f"spoken answers heard right by {summary['listener']}, of the {summary['listener_n']} replies whose "
                  f"thought is right: the model's voice {pct(summary['accuracy_listener'])}, the same sentences in "
                  f"the reference voice {pct(summary['accuracy_listener_reference'])}, ratio "
                  f"{num(summary['listener_ratio'], 3)}", ""]
    lines += ["per family (thought / reply text / spoken: answers right from audio questions; spoken: the judge)"]
    lines += _table({**summary["per_family"], "all": overall}, with_text=True)
    lines += ["", "per question voice"] + _table(summary["per_voice"], with_text=False)
    lines += ["", f"modality gap (text - audio, thought answers): {summary['modality_gap']:+.1%}"]
    intervals = [f"{name} {pct(low)}-{pct(high)}" for name, bounds in (summary.get("ci95") or {}).items()
                 if bounds is not None for low, high in [bounds]]
    if intervals:
        lines.append(f"95 % intervals (n = {summary['n']}): " + ", ".join(intervals))
    if summary.get("numbers_heard") is not None:
        lines.append(f"hearing: CER {num(summary['hearing_cer'])} against the written question, every number "
                     f"heard right in {pct(summary['numbers_heard'])}; answers right where it was: "
                     f"{pct(summary['accuracy_when_numbers_heard'])}")
    if summary["judge"] is None:
        lines.append(f"spoken answers and reply WER/CER: {NO_JUDGE}")
    else:
        lines.append(f"reply WER {num(summary['wer'])}, CER {num(summary['cer'])} (judge: {summary['judge']}; "
                     "trained on the assistant's own voice, so not an independent listener)")
    if summary.get("reply_mcd_db") is not None:
        lines.append(f"reply speech against the corpus's recording of the same words: MCD-DTW "
                     f"{num(summary['reply_mcd_db'], 2)} dB")
    if summary.get("accuracy_spoken_sphinx") is not None:
        lines.append(f"spoken answers right as pocketsphinx hears them (a weak, independent second opinion): "
                     f"{pct(summary['accuracy_spoken_sphinx'])}")
    lines.append(f"first audio p50 {_ms(summary['ttfa_ms_p50'])}, p90 {_ms(summary['ttfa_ms_p90'])}; "
                 f"total p50 {_ms(summary['total_ms_p50'])}; RTF p50 {num(summary['rtf_p50'])}; "
                 f"thought {num(summary['thought_tokens_mean'], 1)} tokens on average")
    shortcut = summary.get("shortcut")
    lines += ["shortcut test: not run (--shortcut)"] if shortcut is None else \
        ["", format_shortcut(shortcut, summary["accuracy_thought"])]
    return "\n".join(lines)


def format_shortcut(shortcut: dict, accuracy_thought: float | None = None) -> str:
    """The shortcut test's lines: how often each replaced audio was abstained on, and answered right."""
    real = "" if accuracy_thought is None else f"; with the real audio {pct(accuracy_thought)}"
    lines = [f"shortcut test (chance {pct(shortcut['chance'])}{real})"]
    for mode in [m for m in ("silence", "noise", "tone", "music", "swap") if m in shortcut]:
        follows = f", answers the other question {pct(shortcut[mode]['follows_audio'])}" if mode == "swap" else ""
        lines.append(f"  {mode:8s} abstained {pct(shortcut[mode].get('abstained'))}, thought answers right "
                     f"{pct(shortcut[mode]['accuracy_thought'])}{follows}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- plots
def plot_accuracy_by_family(summary: dict) -> Figure:
    """Thought-answer accuracy per family, from audio and from text, with each family's chance level."""
    families = list(summary["per_family"])
    fig = Figure(figsize=(max(5, 1.2 * len(families) + 2), 3.6))
    ax = fig.add_subplot()
    x = range(len(families))
    audio = [summary["per_family"][f]["accuracy_thought"] for f in families]
    text = [summary["per_family"][f].get("accuracy_text") or 0 for f in families]
    ax.bar([i - 0.2 for i in x], audio, 0.4, label="audio question")
    ax.bar([i + 0.2 for i in x], text, 0.4, label="text question")
    chance = [summary["per_family"][f].get("chance") for f in families]
    if any(c is not None for c in chance):
        ax.scatter(list(x), [c if c is not None else float("nan") for c in chance], marker="_", s=400,
                   color="black", label="chance", zorder=3)
    ax.set_xticks(list(x), families, rotation=20)
    ax.set_ylim(0, 1.18)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("answers right")
    ax.set_title("Accuracy by family")
    ax.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def plot_ttfa_histogram(summary: dict) -> Figure:
    """Time to first audio of every audio-question answer, with p50 and p90 marked."""
    ttfa = [e["ttfa_ms"] for e in summary["runs"]["audio"]["examples"] if e.get("ttfa_ms") is not None]
    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    if ttfa:
        ax.hist(ttfa, bins=min(30, max(5, len(ttfa) // 3)))
        for q in ("p50", "p90"):
            ax.axvline(summary[f"ttfa_ms_{q}"], color="black", linestyle="--" if q == "p50" else ":", label=q)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no reply had audio", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("time to first audio (ms)")
    ax.set_ylabel("replies")
    ax.set_title("Latency")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_thought_length(summary: dict, bins: int = 5) -> Figure:
    """Accuracy of audio-question answers in up to `bins` bins of thought length (tokens), of about equal counts."""
    examples = summary["runs"]["audio"]["examples"]
    tokens = np.array([e["thought_tokens"] for e in examples], dtype=float)
    edges = np.unique(np.quantile(tokens, np.linspace(0, 1, bins + 1)))  # equal counts; equal lengths share a bin
    index = np.digitize(tokens, edges[1:-1], right=True)
    groups = [[e for e, i in zip(examples, index) if i == b] for b in range(max(1, len(edges) - 1))]
    groups = [g for g in groups if g]
    lengths = [sum(e["thought_tokens"] for e in g) / len(g) for g in groups]
    accuracy = [sum(e["thought_correct"] for e in g) / len(g) for g in groups]
    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    ax.plot(lengths, accuracy, marker="o")
    for x, y, g in zip(lengths, accuracy, groups):
        ax.annotate(f"n={len(g)}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("thought length (tokens, bin mean)")
    ax.set_ylabel("answers right")
    ax.set_title("Accuracy against thought length")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_ttfa(results: list[tuple[str, dict]]) -> Figure:
    """One point per result (a sequence format): thought-answer accuracy against median time to first audio."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    for label, data in results:
        if data.get("ttfa_ms_p50") is None:
            continue
        ax.scatter(data["ttfa_ms_p50"], data["accuracy_thought"], s=40)
        ax.annotate(label, (data["ttfa_ms_p50"], data["accuracy_thought"]), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time to first audio, p50 (ms)")
    ax.set_ylabel("answers right (thought, audio questions)")
    ax.set_title("Accuracy against latency, per format")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- the report folder
def _markdown(summary: dict, plots: dict[str, str]) -> str:
    lines = ["# s2s evaluate", "", f"Manifest `{summary['manifest']}`, {summary['n']} questions, "
             f"format `{summary.get('format') or '-'}`, judge: {summary['judge'] or NO_JUDGE}, calculator: "
             f"{'on' if summary.get('calculator', True) else 'off'}.", "",
             "| figure | value |", "|---|---|"]
    headline = (("accuracy_thought", pct), ("accuracy_spoken", pct), ("accuracy_spoken_sphinx", pct),
                ("accuracy_text", pct),
                ("accuracy_reply_text", pct), ("modality_gap", pct), ("wer", num), ("cer", num),
                ("reply_mcd_db", lambda v: num(v, 2)), ("hearing_cer", num), ("numbers_heard", pct),
                ("accuracy_when_numbers_heard", pct),
                ("ttfa_ms_p50", _ms), ("ttfa_ms_p90", _ms), ("total_ms_p50", _ms), ("total_ms_p90", _ms),
                ("rtf_p50", num), ("rtf_p90", num), ("thought_tokens_mean", lambda v: num(v, 1)), ("chance", pct))
    for name, show in headline:
        judged = name in ("accuracy_spoken", "wer", "cer")
        lines.append(f"| {name} | {'no judge' if judged and summary['judge'] is None else show(summary.get(name))} |")
    for title, rows, with_text in (("Per family", summary["per_family"], True),
                                   ("Per question voice", summary["per_voice"], False)):
        lines += ["", f"## {title}", "", "| | n | thought | reply text | spoken | WER |"
                  + (" text question | chance |" if with_text else ""),
                  "|---|---|---|---|---|---|" + ("---|---|" if with_text else "")]
        for name, f in rows.items():
            line = (f"| {name} | {f['n']} | {pct(f['accuracy_thought'])} | {pct(f['accuracy_reply_text'])} | "
                    f"{pct(f['accuracy_spoken'])} | {num(f['wer'])} |")
            if with_text:
                line += f" {pct(f.get('accuracy_text'))} | {pct(f.get('chance'))} |"
            lines.append(line)
    lines += ["", "## Does it listen? (shortcut test)", ""]
    shortcut = summary.get("shortcut")
    if shortcut is None:
        lines.append("Not run: pass `--shortcut`.")
    else:
        lines += [f"Chance level, averaged over the questions' families: {pct(shortcut['chance'])}. With the real "
                  f"audio: {pct(summary['accuracy_thought'])}. A model that listens abstains on silence, noise, a "
                  "tone and music (or falls to chance), and on swapped audio answers the other question.", "",
                  "| question audio | abstained | thought answers right | answers the other question |",
                  "|---|---|---|---|"]
        for mode in [m for m in ("silence", "noise", "tone", "music", "swap") if m in shortcut]:
            lines.append(f"| {mode} | {pct(shortcut[mode].get('abstained'))} | "
                         f"{pct(shortcut[mode]['accuracy_thought'])} | "
                         f"{pct(shortcut[mode].get('follows_audio')) if mode == 'swap' else ''} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({file})" for name, file in plots.items()]
    return "\n".join(lines) + "\n"


def write_report(summary: dict, out_dir: str | os.PathLike, compare: list[tuple[str, dict]] = (),
                 overwrite: bool = False) -> Path:
    """Write report.md, summary.json (usable with --compare) and the PNG plots into `out_dir`.

    `summary` is `s2s.eval.reasoning.evaluate`'s, examples included. With
    `compare` ((label, summary) pairs, e.g. from `read_results`), the
    accuracy-against-TTFA plot shows them beside this run.
    """
    check_report_dir(out_dir, overwrite)
    figures = {"accuracy_by_family": plot_accuracy_by_family(summary),
               "ttfa_histogram": plot_ttfa_histogram(summary),
               "accuracy_vs_thought_length": plot_accuracy_vs_thought_length(summary)}
    if compare:
        figures["accuracy_vs_ttfa"] = plot_accuracy_vs_ttfa([(summary.get("format") or "this run", summary),
                                                            *compare])
    with atomic_folder(out_dir, overwrite) as tmp:
        for name, fig in figures.items():
            fig.savefig(tmp / PLOTS[name], dpi=110)
        (tmp / SUMMARY_FILE).write_text(json.dumps(without_examples(summary), indent=2) + "\n")
        (tmp / REPORT_FILE).write_text(_markdown(summary, {name: PLOTS[name] for name in figures}))
    return Path(out_dir)
