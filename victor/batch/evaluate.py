"""``evaluate()``: a batch per variant (two agents, two prompts...) over one dataset, each
output scored, and the variants compared side by side in a table and a plot.

    report = await evaluate(dataset, {"terse": terse, "friendly": friendly},
                            [exact_match, llm_judge(judge_agent)])
    report            # in a notebook: the summary table and the score distributions
    report.table()    # one row per item, each variant's output and scores side by side

A scorer is a function ``(output)``, ``(output, expected)`` or ``(output, expected,
item)``, sync or async, returning a bool or a number (higher is better); ``expected`` is
the item's ``expected`` field (``expected=`` names another). A failed item scores 0; a
scorer that raises leaves that score empty and its error (type and message) is kept in
``score_errors``.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .core import Backend, batch
from .items import Prompt
from .judge import llm_judge  # in judge.py; importable from here as it always was
from .results import BatchResults

__all__ = ["evaluate", "Evaluation", "ScorePlot", "exact_match", "contains", "llm_judge"]

Scorer = Callable[..., Any]


# -- scorers -------------------------------------------------------------------------------


def exact_match(output: Any, expected: Any) -> bool:
    """The output equals the expected answer, ignoring case, surrounding space and a final
    full stop."""
    return _normal(output) == _normal(expected)


def contains(output: Any, expected: Any) -> bool:
    """The expected answer appears in the output (case ignored)."""
    return _normal(expected) in _normal(output)


# -- evaluate ------------------------------------------------------------------------------


async def evaluate(
    dataset: Iterable[Any],
    agent: Any,
    scorers: Sequence[Scorer] | Mapping[str, Scorer] = (exact_match,),
    *,
    expected: str = "expected",
    prompt: Prompt = None,
    concurrency: int = 8,
    retries: int = 0,
    timeout: float | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    backend: Backend = "local",
    workers: int | None = None,
    ray_options: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Evaluation:
    """Run ``agent`` over ``dataset`` and score every output; ``agent`` may be a dict of
    variants (``{"v1": agent_a, "v2": agent_b}``) to compare side by side.

    Each variant is one ``batch`` (same options: ``prompt``, ``concurrency``, ``retries``,
    ``timeout``, ``progress``, ``backend``, ``workers``, ``ray_options``); with
    ``checkpoint="eval.jsonl"`` variant ``v1`` keeps its results in ``eval.v1.jsonl``, so a
    rerun resumes each variant. Scoring runs here, ``concurrency`` scorers at a time.
    """
    items = list(dataset)
    variants = dict(agent) if isinstance(agent, Mapping) else {_label(agent, name): agent}
    if not variants:
        raise ConfigurationError("agent={} has no variants: give at least one agent")
    named = _named_scorers(scorers)
    results: dict[str, BatchResults] = {}
    for label, target in variants.items():
        results[label] = await batch(
            items,
            target,
            prompt=prompt,
            concurrency=concurrency,
            retries=retries,
            timeout=timeout,
            checkpoint=_variant_path(checkpoint, label, len(variants)),
            progress=progress,
            backend=backend,
            workers=workers,
            ray_options=ray_options,
            name=label,
        )
    evaluation = Evaluation(
        items=items, results=results, scorers=list(named), expected_field=expected
    )
    await evaluation._score(named, concurrency)
    return evaluation


@dataclass
class Evaluation:
    """Outputs and scores of each variant over one dataset."""

    items: list[Any]
    #: Each variant's batch results, in dataset order.
    results: dict[str, BatchResults]
    #: Scorer names, in the order given.
    scorers: list[str]
    expected_field: str = "expected"
    #: ``scores[variant][i][scorer]``: item ``i``'s score (None: the scorer failed).
    scores: dict[str, list[dict[str, float | None]]] = field(default_factory=dict)
    #: ``score_errors[variant][i][scorer]``: why a scorer failed on item ``i``, as
    #: ``{"type": "ValueError", "message": "..."}``; only items with a failed scorer.
    score_errors: dict[str, dict[int, dict[str, dict[str, str]]]] = field(default_factory=dict)

    @property
    def variants(self) -> list[str]:
        return list(self.results)

    def expected(self, item: Any) -> Any:
        if isinstance(item, Mapping):
            return item.get(self.expected_field)
        return None

    def means(self) -> dict[str, dict[str, float]]:
        """Each variant's mean score per scorer (failed items count as 0)."""
        means: dict[str, dict[str, float]] = {}
        for variant, rows in self.scores.items():
            means[variant] = {}
            for scorer in self.scorers:
                values = [row[scorer] for row in rows if row[scorer] is not None]
                means[variant][scorer] = sum(values) / len(values) if values else float("nan")
        return means

    def summary(self) -> Any:
        """One row per variant: items, failures, mean scores, tokens, seconds. A pandas
        DataFrame when pandas is installed, else a list of dicts."""
        means = self.means()
        rows = []
        for variant, results in self.results.items():
            summary = results.summary
            rows.append(
                {
                    "variant": variant,
                    "items": summary.total,
                    "failed": summary.failed,
                    **{scorer: round(means[variant][scorer], 4) for scorer in self.scorers},
                    "tokens": summary.usage.total_tokens,
                    "seconds": round(summary.seconds, 2),
                }
            )
        return _frame(rows, index="variant")

    def table(self) -> Any:
        """One row per item: its input and expected answer, then each variant's output,
        error and scores side by side. A DataFrame when pandas is installed."""
        rows = []
        for index, item in enumerate(self.items):
            row: dict[str, Any] = {"index": index, "item": item, "expected": self.expected(item)}
            for variant, results in self.results.items():
                result = results[index]
                row[f"{variant} output"] = result.output
                row[f"{variant} error"] = result.error
                for scorer in self.scorers:
                    row[f"{variant} {scorer}"] = self.scores[variant][index][scorer]
            rows.append(row)
        return _frame(rows, index="index")

    def disagreements(self, scorer: str | None = None) -> list[int]:
        """Indexes of items whose score differs between variants (first scorer by default)."""
        scorer = scorer or self.scorers[0]
        return [
            index
            for index in range(len(self.items))
            if len({self.scores[v][index][scorer] for v in self.results}) > 1
        ]

    def plot(self) -> ScorePlot:
        """The distribution of each scorer's scores, variants side by side (an SVG)."""
        return ScorePlot(self)

    def __repr__(self) -> str:
        return (
            f"Evaluation(variants={self.variants}, items={len(self.items)}, {self._means_text()})"
        )

    def _means_text(self) -> str:
        means = self.means()
        return "; ".join(
            f"{variant}: " + ", ".join(f"{s} {means[variant][s]:.3f}" for s in self.scorers)
            for variant in self.results
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        head = ["variant", "items", "failed", *self.scorers, "tokens"]
        means = self.means()
        lines = []
        cells = []
        for variant, results in self.results.items():
            summary = results.summary
            values = [
                variant,
                str(summary.total),
                str(summary.failed),
                *(f"{means[variant][s]:.3f}" for s in self.scorers),
                f"{summary.usage.total_tokens:,}",
            ]
            cells.append(values)
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(head)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        for row in cells:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        table = (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in cells
            )
            + "</tbody></table>"
        )
        return {
            "text/plain": "\n".join(lines),
            "text/html": f"{table}{self.plot()._image()}",
        }

    async def _score(self, scorers: dict[str, Scorer], concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def score(variant: str, index: int, name: str, scorer: Scorer) -> None:
            result = self.results[variant][index]
            if not result.ok:
                self.scores[variant][index][name] = 0.0
                return
            item = result.item
            async with slots:
                try:
                    value = _call_scorer(scorer, result.output, self.expected(item), item)
                    if inspect.isawaitable(value):
                        value = await value
                    self.scores[variant][index][name] = _as_score(value, name)
                except Exception as exc:  # noqa: BLE001 - one scorer failing is data
                    self.scores[variant][index][name] = None
                    errors = self.score_errors[variant].setdefault(index, {})
                    errors[name] = {"type": type(exc).__name__, "message": str(exc)}

        for variant in self.results:
            self.scores[variant] = [{} for _ in self.items]
            self.score_errors[variant] = {}
        await asyncio.gather(
            *(
                score(variant, index, name, scorer)
                for variant in self.results
                for index in range(len(self.items))
                for name, scorer in scorers.items()
            )
        )
        for variant, errors in self.score_errors.items():  # in item order, not finishing order
            self.score_errors[variant] = dict(sorted(errors.items()))


# -- the plot ------------------------------------------------------------------------------

_COLOURS = ("#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2")


class ScorePlot:
    """Histograms of scores, one panel per scorer, one bar colour per variant. Drawn as
    SVG by hand (no plotting library), shown as an image so exported notebooks keep it."""

    bins = 10

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation

    def counts(self, scorer: str) -> tuple[list[str], dict[str, list[int]]]:
        """Bin labels and, per variant, how many items fall in each bin."""
        ev = self.evaluation
        values = {
            v: [row[scorer] for row in ev.scores[v] if row[scorer] is not None] for v in ev.scores
        }
        binary = all(x in (0.0, 1.0) for xs in values.values() for x in xs)
        if binary:
            labels = ["0", "1"]
            counts = {v: [xs.count(0.0), xs.count(1.0)] for v, xs in values.items()}
            return labels, counts
        labels = [f"{i / self.bins:.1f}" for i in range(self.bins)]
        counts = {}
        for variant, xs in values.items():
            row = [0] * self.bins
            for x in xs:
                row[min(self.bins - 1, max(0, int(x * self.bins)))] += 1
            counts[variant] = row
        return labels, counts

    def to_svg(self) -> str:
        ev = self.evaluation
        panel_w, panel_h, pad = 300, 150, 30
        width = pad + len(ev.scorers) * (panel_w + pad)
        height = panel_h + 2 * pad + 18 * len(ev.variants)
        out = [
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            "font-family='sans-serif' font-size='11'>",
            f"<rect width='{width}' height='{height}' fill='white'/>",
        ]
        for p, scorer in enumerate(ev.scorers):
            x0 = pad + p * (panel_w + pad)
            labels, counts = self.counts(scorer)
            top = max((c for row in counts.values() for c in row), default=0) or 1
            group_w = panel_w / len(labels)
            bar_w = group_w * 0.8 / max(len(counts), 1)
            out.append(
                f"<text x='{x0}' y='{pad - 10}' font-weight='bold'>{html.escape(scorer)}</text>"
            )
            base = pad + panel_h
            out.append(
                f"<line x1='{x0}' y1='{base}' x2='{x0 + panel_w}' y2='{base}' stroke='#555'/>"
            )
            for b, label in enumerate(labels):
                gx = x0 + b * group_w + group_w * 0.1
                for v, (variant, row) in enumerate(counts.items()):
                    h = panel_h * row[b] / top
                    colour = _COLOURS[v % len(_COLOURS)]
                    out.append(
                        f"<rect x='{gx + v * bar_w:.1f}' y='{base - h:.1f}' width='{bar_w:.1f}' "
                        f"height='{h:.1f}' fill='{colour}'><title>{html.escape(variant)}: "
                        f"{row[b]} item(s) at {label}</title></rect>"
                    )
                out.append(
                    f"<text x='{gx + group_w * 0.4:.1f}' y='{base + 13}' text-anchor='middle' "
                    f"fill='#555'>{label}</text>"
                )
            out.append(
                f"<text x='{x0 - 4}' y='{pad + 4}' text-anchor='end' fill='#555'>{top}</text>"
            )
        legend_y = pad + panel_h + 34
        for v, variant in enumerate(ev.variants):
            y = legend_y + 18 * v
            colour = _COLOURS[v % len(_COLOURS)]
            out.append(f"<rect x='{pad}' y='{y - 9}' width='10' height='10' fill='{colour}'/>")
            out.append(f"<text x='{pad + 16}' y='{y}'>{html.escape(variant)}</text>")
        out.append("</svg>")
        return "".join(out)

    def _image(self) -> str:
        from .progress import svg_image

        return svg_image(self.to_svg(), "score distribution per variant")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        ev = self.evaluation
        lines = []
        for scorer in ev.scorers:
            labels, counts = self.counts(scorer)
            lines.append(f"{scorer} (bins {', '.join(labels)}):")
            lines += [f"  {variant}: {row}" for variant, row in counts.items()]
        return {"text/plain": "\n".join(lines), "text/html": self._image()}


# -- helpers -------------------------------------------------------------------------------


def _named_scorers(scorers: Sequence[Scorer] | Mapping[str, Scorer]) -> dict[str, Scorer]:
    if isinstance(scorers, Mapping):
        named = dict(scorers)
    elif callable(scorers):
        named = {getattr(scorers, "__name__", "score"): scorers}
    else:
        named = {}
        for scorer in scorers:
            label = getattr(scorer, "__name__", "score")
            if label in named:
                raise ConfigurationError(
                    f"two scorers are named {label!r}: pass a dict of name -> scorer"
                )
            named[label] = scorer
    if not named:
        raise ConfigurationError("scorers is empty: give at least one, e.g. [exact_match]")
    for label, scorer in named.items():
        if not callable(scorer):
            raise ConfigurationError(f"scorer {label!r} is not a function: {scorer!r}")
    return named


def _call_scorer(scorer: Scorer, output: Any, expected: Any, item: Any) -> Any:
    try:
        parameters = [
            p
            for p in inspect.signature(scorer).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        arity = len(parameters)
    except (TypeError, ValueError):  # a builtin without a signature: give it everything
        arity = 3
    if arity <= 1:
        return scorer(output)
    if arity == 2:
        return scorer(output, expected)
    return scorer(output, expected, item)


def _as_score(value: Any, name: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"scorer {name!r} returned {value!r}; return a bool or a number")


def _normal(value: Any) -> str:
    text = " ".join(str(value if value is not None else "").split()).casefold()
    return text[:-1] if text.endswith(".") else text


def _label(agent: Any, name: str | None) -> str:
    return name or getattr(agent, "name", None) or getattr(agent, "__name__", None) or "agent"


def _variant_path(
    checkpoint: str | os.PathLike[str] | None, label: str, variants: int
) -> Path | None:
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    if variants == 1:
        return path
    slug = re.sub(r"[^\w.-]+", "-", label).strip("-") or "variant"
    return path.with_name(f"{path.stem}.{slug}{path.suffix}")


def _frame(rows: list[dict[str, Any]], *, index: str) -> Any:
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows).set_index(index)
