"""Extract: a training mixture. How a token budget is shared between sources, and how often each one is repeated.

A pre-training set is a mixture, not a pile: web crawl, books, code, encyclopedias, each given a **weight**, its
share of the tokens the model will read. Weights are chosen, not found: a source weighted above its **natural
share** (its size over the size of all the text in the mixture) is **upsampled**, read more often than its size
alone would give, and the price is repetition. A source's **epochs** (how many times its text is read) are the
tokens drawn from it over its size; GPT-3 (Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.2)
read its filtered Common Crawl less than half through while it read Wikipedia more than three times.

How much repetition is too much: Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (NeurIPS 2023,
arXiv:2305.16264), trained hundreds of models on repeated data: up to about 4 epochs the loss was nearly what fresh
data gives, and by about 16 epochs further repeats added almost nothing. Those are the two thresholds used here.
`plan_mixture` is plain arithmetic on sizes and weights; what a mixture teaches a model is measured in
`engine.look_inside.domain_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

FRESH_LIMIT = 4.0  # epochs: up to here repeats are nearly as good as fresh text (Muennighoff et al. 2023)
FADED_LIMIT = 16.0  # epochs: by here further repeats add almost nothing (Muennighoff et al. 2023)
LEVELS = ("unused", "fresh", "repeated", "over", "far_over")  # how hard a source is repeated, mildest first


@dataclass(frozen=True)
class SourcePlan:
    """One source in a mixture: what it holds, what it is given, and how often that makes the model read it."""

    name: str
    size: int  # tokens the source holds
    weight: float  # as chosen (any scale: only the ratios between weights matter)
    natural_share: float  # size / the sizes of all sources in the mixture (weight above 0); 0 when left out
    share: float  # weight / all weights: its share of the budget
    tokens: int  # tokens drawn from it; the sources' tokens add up to the budget exactly
    epochs: float  # tokens / size: how many times its text is read
    level: str  # one of LEVELS
    note: str  # the level in words, with why

    @property
    def boost(self) -> float:
        """share / natural share: above 1 the source is upsampled, below 1 downsampled."""
        return self.share / self.natural_share if self.natural_share else 0.0

    @property
    def flagged(self) -> bool:
        """Repeated past the point where repeats stay nearly as good as fresh text."""
        return self.level in ("over", "far_over")


@dataclass(frozen=True)
class MixturePlan:
    """A budget shared between sources. `unique_tokens`: the tokens read at least once (each source's drawn tokens,
    at most its size); the rest of the budget is repetition."""

    budget: int
    sources: list[SourcePlan]
    unique_tokens: int

    @property
    def repeated_tokens(self) -> int:
        return self.budget - self.unique_tokens

    @property
    def flagged(self) -> list[SourcePlan]:
        return [s for s in self.sources if s.flagged]


def repetition_level(epochs: float) -> str:
    """Which of LEVELS a number of epochs falls in.

    >>> [repetition_level(e) for e in (0, 0.4, 1, 2.5, 4, 9, 40)]
    ['unused', 'fresh', 'fresh', 'repeated', 'repeated', 'over', 'far_over']
    """
    if epochs <= 0:
        return "unused"
    if epochs <= 1:
        return "fresh"
    if epochs <= FRESH_LIMIT:
        return "repeated"
    if epochs <= FADED_LIMIT:
        return "over"
    return "far_over"


def repetition_note(epochs: float) -> str:
    """What reading a text `epochs` times does, in words.

    >>> repetition_note(0.25)
    'read 25% of the way through: every token drawn is new'
    >>> repetition_note(6)
    'read 6.0 times: past about 4 passes each one teaches less, and the model starts to memorise the text'
    """
    level = repetition_level(epochs)
    if level == "unused":
        return "weight 0: left out of the mixture"
    if level == "fresh":
        return ("read exactly once: every token drawn is new" if epochs == 1
                else f"read {epochs:.0%} of the way through: every token drawn is new")
    if level == "repeated":
        return (f"read {epochs:.1f} times: a few passes over good text are nearly as useful as fresh text "
                f"(up to about {FRESH_LIMIT:.0f}, Muennighoff et al. 2023)")
    if level == "over":
        return (f"read {epochs:.1f} times: past about {FRESH_LIMIT:.0f} passes each one teaches less, and the model "
                "starts to memorise the text")
    return (f"read {epochs:,.0f} times: past about {FADED_LIMIT:.0f} passes more repeats add almost nothing, and the "
            "model memorises the text instead of learning from it")


def _split(budget: int, shares: list[float]) -> list[int]:
    """Whole tokens per source, proportional to `shares` and adding up to `budget` exactly (largest remainder).

    >>> _split(10, [1/3, 1/3, 1/3])
    [4, 3, 3]
    """
    exact = [budget * s for s in shares]
    whole = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (whole[i] - exact[i], i))
    for i in by_remainder[: budget - sum(whole)]:
        whole[i] += 1
    return whole


def plan_mixture(sources: dict[str, int], weights: dict[str, float], budget_tokens: int) -> MixturePlan:
    """Share `budget_tokens` between `sources` (name -> size in tokens) by `weights` (name -> weight; a missing name
    weighs 0), and say how many times each source is read.

    Why epochs matter more than shares: a share says how much of the model's reading is, say, code; the epochs say
    whether there is enough code to fill that share with text the model has not read yet. A small, good source with
    a big weight is read again and again, which helps for a few passes and then turns into memorising it.

    >>> plan = plan_mixture({"web": 9_000, "books": 1_000}, {"web": 1, "books": 1}, budget_tokens=10_000)
    >>> [(s.name, s.share, s.tokens, s.epochs, s.level) for s in plan.sources]
    [('web', 0.5, 5000, 0.5555555555555556, 'fresh'), ('books', 0.5, 5000, 5.0, 'over')]
    >>> round(plan.sources[1].boost, 6), plan.unique_tokens, [s.name for s in plan.flagged]
    (5.0, 6000, ['books'])
    """
    if budget_tokens <= 0:
        raise ValueError("the token budget must be positive")
    if not sources:
        raise ValueError("a mixture needs at least one source")
    unknown = sorted(set(weights) - set(sources))
    if unknown:
        raise ValueError(f"weights for sources that are not in the mixture: {', '.join(unknown)}")
    w = {name: float(weights.get(name, 0.0)) for name in sources}
    if any(x < 0 for x in w.values()):
        raise ValueError("weights cannot be negative")
    total_weight = sum(w.values())
    if total_weight <= 0:
        raise ValueError("give at least one source a weight above 0")
    empty = [name for name, size in sources.items() if size <= 0 and w[name] > 0]
    if empty:
        raise ValueError(f"nothing to draw from: {', '.join(empty)} holds no tokens")
    total_size = sum(size for name, size in sources.items() if w[name] > 0)  # the text in the mixture
    names = list(sources)
    shares = [w[name] / total_weight for name in names]
    drawn = _split(budget_tokens, shares)
    plans = []
    for name, share, tokens in zip(names, shares, drawn, strict=True):
        size = sources[name]
        epochs = tokens / size if size > 0 else 0.0
        natural = size / total_size if w[name] > 0 else 0.0
        plans.append(SourcePlan(name=name, size=size, weight=w[name], natural_share=natural,
                                share=share, tokens=tokens, epochs=epochs, level=repetition_level(epochs),
                                note=repetition_note(epochs)))
    unique = sum(min(p.tokens, max(p.size, 0)) for p in plans)
    return MixturePlan(budget=budget_tokens, sources=plans, unique_tokens=unique)
