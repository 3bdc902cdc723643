"""A synthetic but realistic interaction log, feedback and document registry, and the quality
report made from it (the sample in ``docs/report/``).

Four weeks of one tenant's help-desk questions over its product documents. In the last week a
new product version ships whose guide failed to ingest: its questions find no good source, the
answers are less supported and more often rated down, so the report's signal fires (re-index and
retrain). Deterministic (seeded): the same command writes the same report.

    .venv/bin/python -m bench.synthetic_interactions --out docs/report
    .venv/bin/python -m bench.synthetic_interactions --out /tmp/report --no-drift   # the quiet case
"""

from __future__ import annotations

import argparse
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from strata.documents import DocumentRecord, DocumentStatus
from strata.feedback import Feedback
from strata.interactions import Interaction, LoggedMessage, RetrievedChunk
from strata_local.report import ReportInputs, build_report

TENANT = "acme"
UNTIL = date(2026, 11, 30)
DAYS = 28
SYSTEM = (
    "You answer questions about Acme's products using only the sources given. Cite each claim with "
    "its source number, like [1]. If the sources do not contain the answer, say so."
)


@dataclass(frozen=True, slots=True)
class Topic:
    question: str
    document: str  # the document that answers it ("" for none)
    answer: str
    weight: int  # how often it is asked


TOPICS = (
    Topic("How do I reset my password?", "account-guide", "Open Settings > Security and choose Reset password [1].", 9),
    Topic("What is the refund policy?", "refund-policy", "Refunds are paid within 14 days of a return [1].", 8),
    Topic("How long does shipping take?", "shipping", "Standard shipping takes 3 to 5 business days [1].", 7),
    Topic("Can I change my delivery address?", "shipping", "Yes, until the order ships, under Orders > Edit [1].", 5),
    Topic("How do I export my data?", "account-guide", "Use Settings > Privacy > Export; a ZIP is e-mailed [1].", 4),
    Topic("Which payment methods are accepted?", "billing", "Cards, PayPal and bank transfer are accepted [1].", 5),
    Topic("How do I cancel my subscription?", "billing", "Cancel under Billing > Plan; it ends at the term [1].", 5),
    Topic("Is there an API rate limit?", "api-reference", "The API allows 600 requests per minute per key [1].", 3),
    Topic(
        "How do I rotate an API key?", "api-reference", "Create a new key, deploy it, then revoke the old one [1].", 2
    ),
    Topic("What does error E42 mean?", "troubleshooting", "E42 means the device lost its network connection [1].", 3),
    Topic("How do I pair the sensor?", "sensor-manual", "Hold the button for 5 seconds until the light blinks [1].", 3),
    Topic(
        "Does the warranty cover water damage?", "warranty", "No, water damage is excluded from the warranty [1].", 2
    ),
)
# Shipped in the last week; its guide failed to ingest, so these find nothing good.
NEW_TOPICS = (
    Topic("How do I migrate to API v3?", "", "Update the base URL to /v3 [1]; the sources say no more.", 6),
    Topic("What changed in v3 webhooks?", "", "Webhooks now retry [1] but the sources do not say how often.", 4),
    Topic("Are v2 API keys valid in v3?", "", "The sources do not say whether v2 keys work in v3.", 3),
)
DOCUMENTS = (
    ("account-guide", "Account guide", 42),
    ("refund-policy", "Refund policy", 6),
    ("shipping", "Shipping and delivery", 11),
    ("billing", "Billing FAQ", 17),
    ("api-reference", "API reference (v2)", 120),
    ("troubleshooting", "Troubleshooting", 35),
    ("sensor-manual", "Sensor manual", 28),
    ("warranty", "Warranty terms", 5),
    ("press-kit", "Press kit 2024", 9),  # never asked about
    ("holiday-hours", "Holiday opening hours 2025", 2),  # never asked about
)
FAILED = (
    ("api-v3-guide", "tenants/acme/api-v3-guide.pdf", "PDF has no text layer (scanned?): 0 of 84 pages have text"),
    ("v3-webhooks", "tenants/acme/v3-webhooks.docx", "unsupported content type 'application/x-ole-storage'"),
    ("price-list", "tenants/acme/price-list.pdf", "PDF has no text layer (scanned?): 0 of 3 pages have text"),
    ("logo", "tenants/acme/logo.png", "unsupported content type 'image/png'"),
)
NEGATIVE_COMMENTS = ("Not what I asked.", "The link in the answer is wrong.", "Too vague.", None, None)
V3_COMMENTS = ("This is about v2, we are on v3.", "Where is the v3 migration guide?", "Too vague.", None)
NOT_IN_DOCUMENTS = "I could not find this in the documents."


def generate(*, drift: bool = True, seed: int = 7) -> ReportInputs:
    rng = random.Random(seed)
    since = UNTIL - timedelta(days=DAYS - 1)
    interactions: list[Interaction] = []
    feedback: dict[tuple[str, str], Feedback] = {}
    for offset in range(DAYS):
        day = since + timedelta(days=offset)
        weekend = day.weekday() >= 5
        late = drift and (UNTIL - day).days < 7
        topics = TOPICS + NEW_TOPICS if late else TOPICS
        for _ in range(rng.randint(8, 14) if weekend else rng.randint(28, 44)):
            topic = rng.choices(topics, weights=[t.weight for t in topics])[0]
            record = _interaction(rng, day, topic)
            interactions.append(record)
            rating = _rating(rng, record)
            if rating is not None:
                comments = V3_COMMENTS if topic in NEW_TOPICS else NEGATIVE_COMMENTS
                comment = rng.choice(comments) if rating < 0 else None
                feedback[(TENANT, record.request_id)] = Feedback(
                    tenant=TENANT,
                    request_id=record.request_id,
                    rating=rating,
                    comment=comment,
                    key_id="web-ui",
                    created_at=record.at + timedelta(seconds=rng.randint(5, 300)),
                )
    return ReportInputs(since, UNTIL, interactions, feedback, _documents())


def _interaction(rng: random.Random, day: date, topic: Topic) -> Interaction:
    at = datetime.combine(day, time(rng.randint(7, 19), rng.randint(0, 59), rng.randint(0, 59)), tzinfo=UTC)
    status = "ok" if rng.random() > 0.02 else rng.choice(["client_disconnected", "error"])
    if topic.document:
        similarity = min(0.95, max(0.36, rng.gauss(0.68, 0.09)))
        retrieved = [
            RetrievedChunk(
                document_id=topic.document,
                chunk_index=rng.randint(0, 5),
                source_key=f"tenants/{TENANT}/{topic.document}.pdf",
                score=1.0,
                similarity=round(similarity, 3),
            ),
            RetrievedChunk(
                document_id=rng.choice(DOCUMENTS[:8])[0],
                chunk_index=rng.randint(0, 5),
                source_key="",
                score=round(rng.uniform(0.3, 0.8), 3),
                similarity=round(similarity - rng.uniform(0.05, 0.2), 3),
            ),
        ]
        confidence = min(1.0, max(0.0, rng.gauss(0.78, 0.14)))
        not_in_documents = False
    else:  # the failed guide: at best a weak match in the v2 reference, often nothing above the floor
        not_in_documents = rng.random() < 0.6
        retrieved = (
            []
            if not_in_documents
            else [
                RetrievedChunk(
                    document_id="api-reference",
                    chunk_index=rng.randint(0, 119),
                    source_key=f"tenants/{TENANT}/api-reference.pdf",
                    score=1.0,
                    similarity=round(rng.uniform(0.36, 0.47), 3),
                )
            ]
        )
        confidence = None if not_in_documents else min(1.0, max(0.0, rng.gauss(0.35, 0.12)))
    sources = "".join(f'<source id="{n}" title="{c.document_id}">…</source>\n' for n, c in enumerate(retrieved, 1))
    first_token = rng.lognormvariate(6.0, 0.3)  # ~400 ms
    total = first_token + rng.lognormvariate(7.2, 0.35)  # ~1.3 s of generation
    return Interaction(
        request_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        tenant=TENANT,
        key_id="web-ui",
        at=at,
        model="default",
        target="strata-chat",
        status=status,
        prompt_name="support",
        prompt_version=3,
        question=topic.question,
        messages=[
            LoggedMessage(role="system", content=SYSTEM),
            LoggedMessage(role="user", content=f"{sources}\n{topic.question}"),
        ],
        answer=NOT_IN_DOCUMENTS if not_in_documents else topic.answer,
        retrieved=retrieved,
        sources_below_floor=rng.randint(0, 2) if not_in_documents else 0,
        not_in_documents=not_in_documents,
        validation="ok" if rng.random() > 0.1 else "citations_removed",
        confidence=round(confidence, 3) if confidence is not None else None,
        finish_reason="stop",
        prompt_tokens=rng.randint(600, 1400) if retrieved else rng.randint(150, 250),
        completion_tokens=rng.randint(40, 180),
        latency_ms={
            "retrieve": round(rng.uniform(25, 60), 1),
            "assemble": round(rng.uniform(2, 6), 1),
            "first_token": round(first_token, 1),
            "total": round(total, 1),
        },
    )


def _rating(rng: random.Random, interaction: Interaction) -> int | None:
    if interaction.status != "ok" or rng.random() > 0.3:  # three answers in ten are rated
        return None
    good = not interaction.not_in_documents and (interaction.confidence or 0) >= 0.5
    return 1 if rng.random() < (0.9 if good else 0.35) else -1


def _documents() -> list[DocumentRecord]:
    updated = f"{UNTIL - timedelta(days=DAYS)}T08:00:00Z"
    records = [
        DocumentRecord(
            tenant=TENANT,
            document_id=document_id,
            source_key=f"tenants/{TENANT}/{document_id}.pdf",
            title=title,
            status=DocumentStatus.INDEXED,
            chunks=chunks,
            updated_at=updated,
        )
        for document_id, title, chunks in DOCUMENTS
    ]
    records += [
        DocumentRecord(
            tenant=TENANT,
            document_id=document_id,
            source_key=key,
            status=DocumentStatus.FAILED,
            reason=reason,
            updated_at=updated,
        )
        for document_id, key, reason in FAILED
    ]
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/report"))
    parser.add_argument("--no-drift", action="store_true", help="no new product in the last week: a quiet signal")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    path = build_report(generate(drift=not args.no_drift, seed=args.seed), args.out)
    flags = (" --no-drift" if args.no_drift else "") + (f" --seed {args.seed}" if args.seed != 7 else "")
    with path.open("a") as report:
        report.write(
            "\n---\n\n*A sample, made from a synthetic log (bench/synthetic_interactions.py: four weeks of one "
            "tenant; in the last week a new product's guide failed to ingest). Regenerate with "
            f"`.venv/bin/python -m bench.synthetic_interactions --out {args.out}{flags}`.*\n"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
