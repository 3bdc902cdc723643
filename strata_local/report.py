"""``strata report`` and ``strata export finetune``: the interaction log read back for operations.

The report joins the interaction log (S3, ``strata.interactions``) with feedback (by tenant and
request id) and the document registry, and writes ``report.md`` with PNG charts: what is asked,
what is answered badly, what is never found, what failed to ingest, how fast and how costly, and
the retrain / re-index signal (:func:`drift_signal`). The export writes the well-rated answers as
OpenAI chat fine-tuning JSON Lines.

Both read AWS through the same ``Settings`` as the other admin commands; ``STATE_DIR/local.env``
points them at the local stack. matplotlib is imported inside the command (the ``report`` extra).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strata.config import Settings
    from strata.documents import DocumentRecord
    from strata.feedback import Feedback
    from strata.interactions import Interaction

DEFAULT_STATE_DIR = Path(".strata")
DEFAULT_OUT = DEFAULT_STATE_DIR / "report"
DEFAULT_FINETUNE_OUT = DEFAULT_STATE_DIR / "finetune.jsonl"
DEFAULT_DAYS = 28  # four weeks: two signal windows and the trend before them

# The quality thresholds (see drift_signal and the report's "How the signal is computed").
LOW_CONFIDENCE = 0.5  # strata.validation.answer_confidence: the share of the answer the sources support
WEAK_SIMILARITY = 0.5  # cosine of the best source the model got (the relevance floor is 0.35 by default)
WINDOW_DAYS = 7
MIN_ANSWERS = 20  # per window, for the answer rates
MIN_RATINGS = 10  # per window, for the negative-feedback rate
DRIFT_POINTS = 0.10  # the rate rose by at least 10 percentage points ...
DRIFT_RATIO = 1.25  # ... and to at least 1.25 times the previous window's
LIST_LIMIT = 20  # rows per table of the report

CHARTS = ("quality.png", "latency.png", "tokens.png", "ingestion_failures.png")


class ReportError(Exception):
    """The report's inputs cannot be read or its range makes no sense."""


# Inputs.


@dataclass(frozen=True, slots=True)
class ReportInputs:
    since: date
    until: date
    interactions: list[Interaction]
    feedback: dict[tuple[str, str], Feedback]  # by (tenant, request_id)
    documents: list[DocumentRecord] = field(default_factory=list)

    def rating(self, interaction: Interaction) -> Feedback | None:
        return self.feedback.get((interaction.tenant, interaction.request_id))


def load_inputs(settings: Settings, since: date, until: date, *, tenant: str | None = None) -> ReportInputs:
    """The log of the range, the feedback of its tenants, and the document registry."""
    from strata import aws
    from strata.documents import DocumentRegistry
    from strata.feedback import MAX_LIST_LIMIT, build_feedback_store
    from strata.interactions import build_interaction_reader

    interactions = list(build_interaction_reader(settings).read(since, until, tenant=tenant))
    store = build_feedback_store(settings)
    feedback: dict[tuple[str, str], Feedback] = {}
    for name in sorted({i.tenant for i in interactions}):
        after = None
        while True:
            page = store.list(name, MAX_LIST_LIMIT, after=after)
            feedback.update({(f.tenant, f.request_id): f for f in page})
            if len(page) < MAX_LIST_LIMIT:
                break
            after = page[-1].request_id
    registry = DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table))
    documents = [d for d in registry.scan() if tenant is None or d.tenant == tenant]
    return ReportInputs(since, until, interactions, feedback, documents)


# What counts as a bad answer.


def answered(interaction: Interaction) -> bool:
    return interaction.status == "ok"


def is_low_confidence(interaction: Interaction) -> bool:
    return interaction.confidence is not None and interaction.confidence < LOW_CONFIDENCE


def is_weak_retrieval(interaction: Interaction) -> bool:
    """No source reached the model (none found, or all below the relevance floor), or the best
    one was only weakly similar to the question."""
    top = interaction.top_similarity
    return interaction.not_in_documents or top is None or top < WEAK_SIMILARITY


# The signal.


@dataclass(frozen=True, slots=True)
class RateDrift:
    name: str
    current: float | None  # None: fewer samples than the minimum
    previous: float | None
    current_n: int
    previous_n: int
    fired: bool


@dataclass(frozen=True, slots=True)
class DriftSignal:
    current: tuple[date, date]
    previous: tuple[date, date]
    rates: tuple[RateDrift, ...]

    @property
    def fired(self) -> bool:
        return any(rate.fired for rate in self.rates)

    @property
    def actions(self) -> list[str]:
        fired = {rate.name for rate in self.rates if rate.fired}
        actions = []
        if "weak_retrieval" in fired:
            actions.append(
                "re-index: questions no longer find their sources: check the ingestion failures and the "
                "documents never retrieved below, then re-ingest (or re-embed with a better model)"
            )
        if fired & {"low_confidence", "negative_feedback"}:
            actions.append(
                "retrain: answers are less supported or less liked: review the prompt version, then "
                "fine-tune on `strata export finetune`"
            )
        return actions


def drift_signal(
    interactions: Sequence[Interaction], feedback: dict[tuple[str, str], Feedback], *, until: date
) -> DriftSignal:
    """The last ``WINDOW_DAYS`` days up to ``until`` against the ``WINDOW_DAYS`` days before them.

    A rate fires when both windows have enough samples and the current rate is at least
    ``DRIFT_POINTS`` higher and at least ``DRIFT_RATIO`` times the previous one.
    """
    current = (until - timedelta(days=WINDOW_DAYS - 1), until)
    previous = (current[0] - timedelta(days=WINDOW_DAYS), current[0] - timedelta(days=1))

    def within(window: tuple[date, date]) -> list[Interaction]:
        return [i for i in interactions if answered(i) and window[0] <= _day(i) <= window[1]]

    now, before = within(current), within(previous)
    rates = (
        _drift("weak_retrieval", [is_weak_retrieval(i) for i in now], [is_weak_retrieval(i) for i in before]),
        _drift("low_confidence", [is_low_confidence(i) for i in now], [is_low_confidence(i) for i in before]),
        _drift(
            "negative_feedback",
            _ratings(now, feedback),
            _ratings(before, feedback),
            minimum=MIN_RATINGS,
        ),
    )
    return DriftSignal(current, previous, rates)


def _ratings(interactions: Iterable[Interaction], feedback: dict[tuple[str, str], Feedback]) -> list[bool]:
    """For each rated interaction: was it a thumbs down."""
    found = (feedback.get((i.tenant, i.request_id)) for i in interactions)
    return [f.rating < 0 for f in found if f is not None]


def _drift(name: str, now: list[bool], before: list[bool], *, minimum: int = MIN_ANSWERS) -> RateDrift:
    current = sum(now) / len(now) if len(now) >= minimum else None
    previous = sum(before) / len(before) if len(before) >= minimum else None
    fired = (
        current is not None
        and previous is not None
        and current - previous >= DRIFT_POINTS
        and current >= previous * DRIFT_RATIO
    )
    return RateDrift(name, current, previous, len(now), len(before), fired)


# The report.


@dataclass(slots=True)
class DayStats:
    day: date
    answers: int = 0
    total_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    weak: int = 0
    low_confidence: int = 0
    rated: int = 0
    negative: int = 0


def daily_stats(inputs: ReportInputs) -> list[DayStats]:
    days = {inputs.since + timedelta(days=n): None for n in range((inputs.until - inputs.since).days + 1)}
    stats = {day: DayStats(day) for day in days}
    for interaction in inputs.interactions:
        day = stats.get(_day(interaction))
        if day is None:
            continue
        day.prompt_tokens += interaction.prompt_tokens
        day.completion_tokens += interaction.completion_tokens
        if "total" in interaction.latency_ms:
            day.total_ms.append(interaction.latency_ms["total"])
        if "first_token" in interaction.latency_ms:
            day.first_token_ms.append(interaction.latency_ms["first_token"])
        if not answered(interaction):
            continue
        day.answers += 1
        day.weak += is_weak_retrieval(interaction)
        day.low_confidence += is_low_confidence(interaction)
        rating = inputs.rating(interaction)
        if rating is not None:
            day.rated += 1
            day.negative += rating.rating < 0
    return list(stats.values())


def build_report(inputs: ReportInputs, out: Path) -> Path:
    """Write ``out/report.md`` and its charts; returns the report's path."""
    if inputs.until < inputs.since:
        raise ReportError(f"--until ({inputs.until}) is before --since ({inputs.since})")
    out.mkdir(parents=True, exist_ok=True)
    days = daily_stats(inputs)
    signal = drift_signal(inputs.interactions, inputs.feedback, until=inputs.until)
    failures = ingestion_failures(inputs.documents)
    _charts(days, signal, failures, out)
    path = out / "report.md"
    path.write_text(render_markdown(inputs, days, signal, failures))
    return path


def top_questions(interactions: Iterable[Interaction], limit: int = LIST_LIMIT) -> list[tuple[str, int, float | None]]:
    """The most asked questions (case, spacing and end punctuation ignored), with their mean confidence."""
    groups: dict[str, list[Interaction]] = defaultdict(list)
    shown: dict[str, str] = {}
    for interaction in interactions:
        if not interaction.question.strip():
            continue
        key = _normalized(interaction.question)
        groups[key].append(interaction)
        shown.setdefault(key, interaction.question.strip())
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:limit]
    return [(shown[key], len(group), _mean(i.confidence for i in group)) for key, group in ranked]


def never_retrieved(documents: Iterable[DocumentRecord], interactions: Iterable[Interaction]) -> list[DocumentRecord]:
    """Indexed documents that no answer of the range was given a chunk of."""
    seen = {(i.tenant, chunk.document_id) for i in interactions for chunk in i.retrieved}
    return sorted(
        (d for d in documents if d.status == "indexed" and (d.tenant, d.document_id) not in seen),
        key=lambda d: (d.tenant, d.source_key),
    )


def ingestion_failures(documents: Iterable[DocumentRecord]) -> list[tuple[str, int]]:
    """Failed registry records by reason (its first line, numbers and quoted names folded)."""
    reasons = Counter(_reason(d.reason or "unknown") for d in documents if d.status == "failed")
    return sorted(reasons.items(), key=lambda item: (-item[1], item[0]))


def render_markdown(
    inputs: ReportInputs, days: list[DayStats], signal: DriftSignal, failures: list[tuple[str, int]]
) -> str:
    answers = [i for i in inputs.interactions if answered(i)]
    rated = [f for i in answers if (f := inputs.rating(i)) is not None]
    lines = [
        "# Strata quality report",
        "",
        f"{inputs.since} to {inputs.until} (UTC). {len(inputs.interactions)} interactions, {len(answers)} answered, "
        f"{len({i.tenant for i in inputs.interactions})} tenant(s); {len(rated)} rated "
        f"({sum(f.rating > 0 for f in rated)} up, {sum(f.rating < 0 for f in rated)} down); "
        f"{len(inputs.documents)} documents in the registry.",
        "",
        "## Retrain / re-index signal",
        "",
        f"**{'FIRING' if signal.fired else 'quiet'}**: {signal.current[0]} to {signal.current[1]} against "
        f"{signal.previous[0]} to {signal.previous[1]}.",
        "",
        "| rate | previous 7 days | last 7 days | change | fired |",
        "|---|---|---|---|---|",
    ]
    for rate in signal.rates:
        change = f"{(rate.current - rate.previous) * 100:+.1f} pts" if None not in (rate.current, rate.previous) else ""
        lines.append(
            f"| {rate.name.replace('_', ' ')} | {_percent(rate.previous, rate.previous_n)} | "
            f"{_percent(rate.current, rate.current_n)} | {change} | {'yes' if rate.fired else 'no'} |"
        )
    lines.append("")
    lines += [f"- {action}" for action in signal.actions] or ["- no action: no rate drifted past its threshold"]
    lines += ["", "![Quality per day](quality.png)", ""]

    lines += ["## Top questions", "", "| question | asked | mean confidence |", "|---|---|---|"]
    lines += [f"| {_cell(q)} | {n} | {_number(c)} |" for q, n, c in top_questions(answers)]

    low = sorted((i for i in answers if is_low_confidence(i)), key=lambda i: (i.confidence, i.request_id))
    lines += ["", f"## Low-confidence answers (confidence < {LOW_CONFIDENCE})", ""]
    lines += [f"{len(low)} of {len(answers)} answers.", ""]
    lines += ["| request | question | answer | confidence |", "|---|---|---|---|"]
    lines += [
        f"| `{i.request_id[:8]}` | {_cell(i.question)} | {_cell(i.answer or '', 120)} | {_number(i.confidence)} |"
        for i in low[:LIST_LIMIT]
    ]

    weak = sorted((i for i in answers if is_weak_retrieval(i)), key=lambda i: (i.top_similarity or -1, i.request_id))
    lines += ["", f"## Questions with weak retrieval (best source similarity < {WEAK_SIMILARITY}, or none)", ""]
    lines += [f"{len(weak)} of {len(answers)} answers.", ""]
    lines += ["| request | question | best similarity | not in documents |", "|---|---|---|---|"]
    lines += [
        f"| `{i.request_id[:8]}` | {_cell(i.question)} | {_number(i.top_similarity)} | "
        f"{'yes' if i.not_in_documents else 'no'} |"
        for i in weak[:LIST_LIMIT]
    ]

    negative = [(i, f) for i in inputs.interactions if (f := inputs.rating(i)) is not None and f.rating < 0]
    negative.sort(key=lambda pair: pair[1].created_at, reverse=True)
    lines += ["", "## Negative feedback", "", f"{len(negative)} thumbs down.", ""]
    lines += ["| when | question | answer | comment |", "|---|---|---|---|"]
    lines += [
        f"| {f.created_at:%Y-%m-%d} | {_cell(i.question)} | {_cell(i.answer or '', 120)} | {_cell(f.comment or '')} |"
        for i, f in negative[:LIST_LIMIT]
    ]

    unused = never_retrieved(inputs.documents, inputs.interactions)
    indexed = sum(d.status == "indexed" for d in inputs.documents)
    lines += ["", "## Documents never retrieved", "", f"{len(unused)} of {indexed} indexed documents.", ""]
    lines += ["| tenant | document | title | chunks |", "|---|---|---|---|"]
    lines += [f"| {d.tenant} | `{d.source_key}` | {_cell(d.title)} | {d.chunks} |" for d in unused[:LIST_LIMIT]]

    lines += ["", "## Ingestion failures by reason", "", f"{sum(n for _, n in failures)} failed documents.", ""]
    lines += ["| reason | documents |", "|---|---|"]
    lines += [f"| {_cell(reason)} | {n} |" for reason, n in failures]
    lines += ["", "![Ingestion failures](ingestion_failures.png)", ""]

    lines += ["## Latency and tokens per day", ""]
    lines += ["| day | answers | total p50 ms | total p95 ms | first token p50 ms | tokens in | tokens out |"]
    lines += ["|---|---|---|---|---|---|---|"]
    lines += [
        f"| {d.day} | {d.answers} | {_number(_percentile(d.total_ms, 50), 0)} | "
        f"{_number(_percentile(d.total_ms, 95), 0)} | {_number(_percentile(d.first_token_ms, 50), 0)} | "
        f"{d.prompt_tokens} | {d.completion_tokens} |"
        for d in days
    ]
    lines += ["", "![Latency per day](latency.png)", "", "![Tokens per day](tokens.png)", ""]

    lines += [
        "## How the signal is computed",
        "",
        "Over the answered interactions (status `ok`) of two windows: the last "
        f"{WINDOW_DAYS} days up to `--until`, and the {WINDOW_DAYS} days before them.",
        "",
        f"- **weak retrieval**: share of answers whose best source has a cosine similarity below {WEAK_SIMILARITY} "
        "to the question, or that no source reached (none found, or all below the relevance floor: "
        "`not_in_documents`).",
        f"- **low confidence**: share of answers whose confidence (the share of the answer's content words "
        f"the cited sources contain) is below {LOW_CONFIDENCE}; answers without a confidence are counted as not low.",
        "- **negative feedback**: share of the window's rated answers rated thumbs down (feedback joined by "
        "tenant and request id).",
        "",
        f"A rate fires when both windows have enough samples ({MIN_ANSWERS} answers; {MIN_RATINGS} ratings for "
        f"feedback) and the last window's rate is at least {DRIFT_POINTS * 100:.0f} percentage points higher "
        f"*and* at least {DRIFT_RATIO} times the previous window's. The signal fires when any rate fires. "
        "Weak retrieval points at the index (**re-index**: ingestion, chunking, embeddings, missing documents); "
        "low confidence or negative feedback at the generation (**retrain**: the prompt version, then a "
        "fine-tune on the well-rated answers).",
        "",
    ]
    return "\n".join(lines)


def _charts(days: list[DayStats], signal: DriftSignal, failures: list[tuple[str, int]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [d.day for d in days]

    def save(figure: Any, name: str) -> None:
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(out / name, dpi=100)
        plt.close(figure)

    figure, axes = plt.subplots(figsize=(9, 4))
    for label, hits, of in (
        ("weak retrieval", "weak", "answers"),
        ("low confidence", "low_confidence", "answers"),
        ("negative feedback", "negative", "rated"),
    ):
        axes.plot(x, [v * 100 if v is not None else float("nan") for v in _trailing(days, hits, of)], label=label)
    axes.axvspan(signal.current[0], signal.current[1], color="tab:red" if signal.fired else "tab:gray", alpha=0.1)
    axes.set_ylabel("% of answers (feedback: of rated)")
    axes.set_title(f"Quality, trailing {WINDOW_DAYS} days (shaded: the signal's last window)")
    axes.legend()
    save(figure, "quality.png")

    figure, axes = plt.subplots(figsize=(9, 4))
    for label, values in (
        ("total p50", [_percentile(d.total_ms, 50) for d in days]),
        ("total p95", [_percentile(d.total_ms, 95) for d in days]),
        ("first token p50", [_percentile(d.first_token_ms, 50) for d in days]),
    ):
        axes.plot(x, [v if v is not None else float("nan") for v in values], marker=".", label=label)
    axes.set_ylabel("ms")
    axes.set_title("Chat latency per day")
    axes.legend()
    save(figure, "latency.png")

    figure, axes = plt.subplots(figsize=(9, 4))
    axes.bar(x, [d.prompt_tokens for d in days], label="prompt (in)")
    axes.bar(x, [d.completion_tokens for d in days], bottom=[d.prompt_tokens for d in days], label="completion (out)")
    axes.set_ylabel("tokens")
    axes.set_title("Tokens per day")
    axes.legend()
    save(figure, "tokens.png")

    figure, axes = plt.subplots(figsize=(9, max(2.5, 0.5 * len(failures) + 1)))
    if failures:
        labels = [reason if len(reason) <= 60 else reason[:57] + "..." for reason, _ in failures][::-1]
        axes.barh(labels, [n for _, n in failures][::-1])
        axes.set_xlabel("documents")
    else:
        axes.text(0.5, 0.5, "no ingestion failures", ha="center", va="center")
        axes.set_axis_off()
    axes.set_title("Ingestion failures by reason")
    figure.tight_layout()
    figure.savefig(out / "ingestion_failures.png", dpi=100)
    plt.close(figure)


# The fine-tuning export.


def finetune_examples(
    interactions: Iterable[Interaction], feedback: dict[tuple[str, str], Feedback], *, min_rating: int = 1
) -> list[dict[str, Any]]:
    """OpenAI chat fine-tuning examples: what the model was given, then the answer it sent, for
    each complete answer rated at least ``min_rating``."""
    examples = []
    for interaction in interactions:
        rating = feedback.get((interaction.tenant, interaction.request_id))
        if rating is None or rating.rating < min_rating or not answered(interaction) or not interaction.answer:
            continue
        messages = [{"role": m.role, "content": m.content} for m in interaction.messages]
        if not messages:  # a record without the prompt: the question alone
            messages = [{"role": "user", "content": interaction.question}]
        examples.append({"messages": [*messages, {"role": "assistant", "content": interaction.answer}]})
    return examples


def write_finetune(examples: Iterable[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as file:
        for example in examples:
            file.write(json.dumps(example, ensure_ascii=False) + "\n")
            count += 1
    return count


# The commands.


def add_report_commands(commands: Any) -> None:
    """``strata report`` and ``strata export finetune`` on ``strata``'s subparsers."""
    report = commands.add_parser("report", help="the quality report of the interaction log (markdown and charts)")
    _range_arguments(report)
    report.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder (default {DEFAULT_OUT})")
    report.set_defaults(run=_report)

    export = commands.add_parser("export", help="export the interaction log").add_subparsers(
        dest="export_command", required=True
    )
    finetune = export.add_parser("finetune", help="well-rated answers as OpenAI chat fine-tuning JSONL")
    _range_arguments(finetune)
    finetune.add_argument(
        "--out", type=Path, default=DEFAULT_FINETUNE_OUT, help=f"file (default {DEFAULT_FINETUNE_OUT})"
    )
    finetune.add_argument(
        "--min-rating", type=int, choices=(1, -1), default=1, help="lowest rating kept (default 1: thumbs up only)"
    )
    finetune.set_defaults(run=_export_finetune)


def _range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", type=_date, default=None, help=f"first day, YYYY-MM-DD (default {DEFAULT_DAYS} days ago)"
    )
    parser.add_argument("--until", type=_date, default=None, help="last day, YYYY-MM-DD (default today, UTC)")
    parser.add_argument("--tenant", default=None, help="one tenant only (default all)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="read the local stack's environment from STATE_DIR/local.env if present",
    )


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD") from None


def _inputs(args: argparse.Namespace) -> ReportInputs:
    from strata.config import Settings
    from strata_local.env_file import load_env_file

    load_env_file(args.state_dir / "local.env")
    until = args.until or datetime.now(UTC).date()
    since = args.since or until - timedelta(days=DEFAULT_DAYS - 1)
    if until < since:
        raise ReportError(f"--until ({until}) is before --since ({since})")
    settings = Settings()
    try:
        return load_inputs(settings, since, until, tenant=args.tenant)
    except Exception as error:  # S3 or DynamoDB that cannot be reached: say where we looked
        raise ReportError(f"cannot read the log at {settings.aws_endpoint_url or 'AWS'}: {error}") from error


def _report(args: argparse.Namespace) -> int:
    try:
        path = build_report(_inputs(args), args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ImportError as error:  # matplotlib is the `report` extra
        print(f"error: {error}: install the report extra (pip install 'strata[report]')", file=sys.stderr)
        return 1
    print(f"wrote {path} and {len(CHARTS)} charts")
    return 0


def _export_finetune(args: argparse.Namespace) -> int:
    try:
        inputs = _inputs(args)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    count = write_finetune(
        finetune_examples(inputs.interactions, inputs.feedback, min_rating=args.min_rating), args.out
    )
    print(f"wrote {count} examples to {args.out}")
    return 0


# Helpers.


def _trailing(days: list[DayStats], hits: str, of: str) -> list[float | None]:
    """Each day's rate over the ``WINDOW_DAYS`` days ending on it (the signal's own windows)."""
    rates: list[float | None] = []
    for end in range(len(days)):
        window = days[max(0, end - WINDOW_DAYS + 1) : end + 1]
        total = sum(getattr(d, of) for d in window)
        rates.append(sum(getattr(d, hits) for d in window) / total if total else None)
    return rates


def _day(interaction: Interaction) -> date:
    return interaction.at.astimezone(UTC).date()


def _normalized(question: str) -> str:
    return re.sub(r"\s+", " ", question.strip().lower()).rstrip("?!. ")


def _reason(reason: str) -> str:
    first = reason.strip().splitlines()[0] if reason.strip() else "unknown"
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)
    return re.sub(r"\d+", "N", first)[:200]


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _percentile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _percent(rate: float | None, n: int) -> str:
    return f"{rate * 100:.1f}% (n={n})" if rate is not None else f"too few (n={n})"


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _cell(text: str, limit: int = 80) -> str:
    """Text for a markdown table cell: one line, no pipes, at most ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text).strip().replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
