from __future__ import annotations

from strata.inference import Finish, TextDelta, Usage
from strata.validation import LoopGuard, validated


def test_an_answer_that_repeats_itself_is_cut_and_the_model_stopped() -> None:
    sentence = "The kangaroo is a marsupial that lives in Australia. "
    closed: list[bool] = []

    def model():
        try:
            for _ in range(50):
                for word in sentence.split(" "):
                    yield TextDelta(word + " ")
            yield Usage(1, 1)
            yield Finish("length")
        finally:
            closed.append(True)

    guard = LoopGuard()
    text = "".join(event.text for event in validated(model(), [guard]) if isinstance(event, TextDelta))

    assert guard.stopped and guard.outcome == "loop_stopped"
    assert closed == [True]  # the upstream generator was closed: no more tokens are produced
    assert text.startswith(sentence.strip())
    assert len(text.split()) < 2 * len(sentence.split())  # one repetition at most, not fifty


def test_an_answer_without_repetition_passes_unchanged() -> None:
    answer = "Kangaroos eat grass [1]. They also eat shrubs and roots, and drink little water [2]."
    guard = LoopGuard()
    events = [TextDelta(answer[i : i + 3]) for i in range(0, len(answer), 3)] + [Finish("stop")]
    out = list(validated(iter(events), [guard]))
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == answer
    assert out[-1] == Finish("stop") and not guard.stopped and guard.outcome == "ok"
