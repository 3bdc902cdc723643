// What the answer's strata extension says about how far to trust it, in words: the confidence
// level and its explanation, the sources grouped per document, and the notes on what validation
// changed or what the answer did without.

import { plural } from "./format.js";

const LEVELS = [
  [0.7, "high", "High"],
  [0.4, "medium", "Medium"],
  [0, "low", "Low"],
];

const REDACTED_KINDS = {
  email: ["e-mail address", "e-mail addresses"],
  phone: ["phone number", "phone numbers"],
  card: ["payment card number", "payment card numbers"],
  iban: ["IBAN", "IBANs"],
  aws_key: ["AWS access key", "AWS access keys"],
  aws_secret: ["AWS secret key", "AWS secret keys"],
};

export function confidence(strata) {
  const value = strata?.confidence;
  if (typeof value !== "number") {
    return {
      level: "none",
      label: "No confidence score",
      explanation: "No score: this answer was not drawn from your documents.",
    };
  }
  const [, level, word] = LEVELS.find(([floor]) => value >= floor);
  const percent = Math.round(value * 100);
  return {
    level,
    label: `${word} confidence`,
    percent,
    explanation: `${percent}% of the answer's key words (names and numbers count more) appear in the passages it cites.`,
  };
}

// Citations grouped per document, in the order the answer first cites them; the passages the
// model was given but the answer does not cite are kept apart.
export function sourcesByDocument(citations = []) {
  const group = (list) => {
    const documents = new Map();
    for (const citation of list) {
      if (!documents.has(citation.document_id)) documents.set(citation.document_id, { ...citation, passages: [] });
      documents.get(citation.document_id).passages.push(citation);
    }
    return [...documents.values()];
  };
  return {
    cited: group(citations.filter((c) => c.referenced)),
    uncited: group(citations.filter((c) => !c.referenced)),
  };
}

// One line per thing the reader should know before trusting the answer.
export function notes(strata, finishReason = null) {
  if (!strata) return [];
  const lines = [];
  if (finishReason === "length") lines.push("The answer reached its length limit: it may stop short.");
  const validation = strata.validation || {};
  const context = strata.context || {};
  if (!strata.citations?.length) {
    lines.push(
      context.sources_below_floor
        ? `No sources used: ${plural(context.sources_below_floor, "passage")} found in your documents, none close enough to the question.`
        : "No sources used: this answer does not come from your documents.",
    );
  } else if (!strata.citations.some((c) => c.referenced)) {
    lines.push("The answer cites none of the passages it was given.");
  }
  if (validation.citations_removed) {
    lines.push(`${plural(validation.citations_removed, "citation")} pointing at no source ${validation.citations_removed === 1 ? "was" : "were"} removed.`);
  }
  if (validation.citations_added) {
    lines.push(`${plural(validation.citations_added, "citation")} added where a passage supports a sentence the model left unmarked.`);
  }
  const redacted = Object.entries(validation.redacted || {}).filter(([, count]) => count > 0);
  if (redacted.length) {
    const what = redacted.map(([kind, count]) => {
      const [one, many] = REDACTED_KINDS[kind] || [kind.replace(/_/g, " "), `${kind.replace(/_/g, " ")}s`];
      return plural(count, one, many);
    });
    lines.push(`Personal data hidden: ${what.join(", ")}.`);
  }
  if (validation.loop_stopped) lines.push("The answer began repeating itself and was cut there.");
  if (context.sources_dropped) lines.push(`${plural(context.sources_dropped, "passage")} did not fit the model's window.`);
  if (strata.failovers) lines.push(`Answered by the fallback model (${strata.target}).`);
  return lines;
}
