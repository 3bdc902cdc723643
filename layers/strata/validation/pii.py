"""Redaction of personal data and credentials in answers as they stream.

The model splits its text at arbitrary points, so a value arrives in pieces (``"41"``,
``"11 1111 11"``, ...). ``PiiRedactor`` holds back the tail that could still become part of a
value and sends on only text no later chunk can change. ``redact`` is the same redaction done
at once: whatever the chunking, the stream's output joined is ``redact`` of the whole answer,
and no character of a value ``redact`` replaces is ever sent on, not even a leading fragment.

What is redacted: e-mail addresses; phone numbers (``+`` international forms with 7-15 digits,
North American ``(555) 123-4567`` / ``555-123-4567`` / ``555.123.4567``, and national forms with
a trunk ``0`` and separators, 9-12 digits: ``020 7946 0958``, ``01 23 45 67 89``); payment card
numbers (13-19 digits, plain or in groups split by one kind of space or hyphen, Luhn-checked);
IBANs (plain or in groups of four, mod-97-checked, with the registry length where the country
is known); AWS access key ids (``AKIA``/``ASIA`` + 16); AWS secret access keys (a free-standing
40-character run of ``[A-Za-z0-9/+]`` mixing lower case, upper case and digits, with ``/`` or
``+`` or two digits or more, and at most three ``/``: a path or an identifier rarely fits it).

Numbers left alone: years, dates (``2024-01-15``, ``05.03.2024``), decimals (``3.14159``), short
numbers, ``[3]``, and any number glued to another digit group by one separator (``12 4111 1111
1111 1111`` is one longer number, not a card). A 13-19 digit run that fails Luhn is not a card
and is left as it is: no phone form takes it either (national forms stop at 12 digits and need
separators, ``+`` forms at 15), because such runs are order, tracking and account numbers far
more often than phones, and a number failing Luhn cannot be charged.

Where it is safe to cut
-----------------------
Every pattern consumes only characters of ``[A-Za-z0-9._%+@/() -]``, and a space only between
two groups of a card, IBAN or phone number: after a digit, a ``)`` or a space-led four-character
IBAN group, and before a digit, a capital letter or ``(``. Every look-around reads on only
through that alphabet, and past a space only right after a digit. So just after

* any other character (``,`` ``;`` ``:`` ``=`` ``[`` a newline ...),
* a space after a character no group ends with (``hello world``), or
* a space before a character no group starts with (``2024 was``)

no match spans the cut and no match attempt before it reads beyond it: the text before the cut
redacts the same whatever follows. A run with no such cut (a long list of numbers, a long
token) is cut by length: an attempt reads at most ``_LONGEST_READ`` characters from where it
starts, so once more than ``HOLD_BACK_LIMIT`` are held, every attempt starting ``_LONGEST_READ``
before the end is settled, and the text up to there (or to the end of a value straddling it)
goes out. Prose is held back one word at most; nothing is ever held back past ``HOLD_BACK_LIMIT``
characters plus the chunk being fed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from strata.validation.base import StreamValidator

PLACEHOLDERS: dict[str, str] = {
    "email": "[email redacted]",
    "phone": "[phone redacted]",
    "card": "[card redacted]",
    "iban": "[iban redacted]",
    "aws_key": "[aws key redacted]",
    "aws_secret": "[aws secret redacted]",
}

_EMAIL_LOCAL_MAX = 64
_EMAIL_DOMAIN_MAX = 64
# The farthest an attempt reads past where it starts: an e-mail address's local part, "@", its
# domain and the character after it. Every other pattern reads less (a "+" phone number 103).
_LONGEST_READ = _EMAIL_LOCAL_MAX + 1 + _EMAIL_DOMAIN_MAX + 1
# The most characters held back once a chunk has been fed (a breakless run longer than this is
# cut by length).
HOLD_BACK_LIMIT = _LONGEST_READ + 32
_CONTEXT = 8  # raw characters kept before the held text: look-behinds read at most 5 back

_NUMBER_START = r"(?<![A-Za-z0-9])(?<![0-9][ .-])"  # not inside a word or a longer number
_NUMBER_END = r"(?![ .-]?[0-9]|[A-Za-z])"
_DECIMAL = r"\+?[0-9]{1,15}\.[0-9]{1,15}(?![ .-]?[0-9])"
_DATE = r"0[1-9][.-][0-3][0-9][.-](?:19|20)[0-9]{2}(?![0-9])"  # 05.03.2024, 01-15-2024

# Group name -> pattern; the order is the order of preference where two start at one place.
_PATTERNS: dict[str, str] = {
    "email": (
        rf"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{{1,{_EMAIL_LOCAL_MAX}}}@"
        rf"(?=[A-Za-z0-9.-]{{4,{_EMAIL_DOMAIN_MAX}}}(?![A-Za-z0-9.-]))"
        r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
    ),
    "aws_key": r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",
    "aws_secret": r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    "iban": (
        r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}"
        r"(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])"
    ),
    "card": (
        rf"{_NUMBER_START}"
        r"(?:[0-9]{4}(?P<card_sep>[ -])[0-9]{3,6}(?:(?P=card_sep)[0-9]{3,6}){1,3}|[0-9]{13,19})"
        rf"{_NUMBER_END}"
    ),
    "phone_intl": (
        rf"(?<![A-Za-z0-9+])(?!{_DECIMAL})"
        r"\+[0-9]{1,3}(?:[ .-]?\([0-9]{1,4}\))?[ .-]?[0-9]{1,14}(?:[ .-][0-9]{1,14}){0,5}"
        rf"{_NUMBER_END}"
    ),
    "phone_nanp": (
        rf"{_NUMBER_START}(?:1[ .-])?"
        r"(?:\([2-9][0-9]{2}\) ?[0-9]{3}[ .-]|[2-9][0-9]{2}(?P<nanp_sep>[.-])[0-9]{3}(?P=nanp_sep))[0-9]{4}"
        rf"{_NUMBER_END}"
    ),
    "phone_trunk": (
        rf"{_NUMBER_START}(?!{_DATE})(?!{_DECIMAL})"
        r"(?:\(0[0-9]{1,4}\) ?|0[0-9]{1,4}[ .-])[0-9]{2,8}(?:[ .-][0-9]{2,8}){0,3}"
        rf"{_NUMBER_END}"
    ),
}
_PII = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS.items()), re.ASCII)

# A character after which the text can be cut (see the module docstring).
_BREAK = re.compile(
    r"[^A-Za-z0-9._%+@/() -]"  # no pattern consumes it
    r"|(?<![0-9)])(?<! [A-Z0-9]{4}) "  # a space no group ends before
    r"| (?=[^0-9A-Z(])",  # a space no group starts after
    re.ASCII,
)

# ISO 13616 registry lengths; a country not listed is held to mod-97 and 15-34 characters.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, ch in enumerate(reversed(digits)):
        digit = ord(ch) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mod97_ok(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


# Each check gets a match of its pattern and says where the value it redacts ends, or None
# when the match is no such value (the scan then tries again one character on).


def _whole(match: re.Match[str]) -> int | None:
    return match.end()


def _aws_secret_end(match: re.Match[str]) -> int | None:
    run = match.group()
    mixed = any(ch.islower() for ch in run) and any(ch.isupper() for ch in run)
    digits = sum(ch.isdigit() for ch in run)
    keyish = "/" in run or "+" in run or digits >= 2
    return match.end() if mixed and digits and keyish and run.count("/") <= 3 else None


def _iban_end(match: re.Match[str]) -> int | None:
    """A grouped match may run on into a word of four capitals after the IBAN ("... 3201 NOTE"):
    the registry length says where the IBAN ends, which must be at a group's end."""
    value = match.group()
    compact = value.replace(" ", "")
    length = _IBAN_LENGTHS.get(compact[:2])
    if length is None:
        return match.end() if 15 <= len(compact) <= 34 and _mod97_ok(compact) else None
    if len(compact) < length or not _mod97_ok(compact[:length]):
        return None
    end = length + (length - 1) // 4 if " " in value else length
    return match.start() + end if end == len(value) or value[end] == " " else None


def _card_end(match: re.Match[str]) -> int | None:
    digits = _digits(match.group())
    return match.end() if 13 <= len(digits) <= 19 and _luhn_ok(digits) else None


def _digit_count(low: int, high: int) -> Callable[[re.Match[str]], int | None]:
    def check(match: re.Match[str]) -> int | None:
        return match.end() if low <= len(_digits(match.group())) <= high else None

    return check


_CHECKS: dict[str, Callable[[re.Match[str]], int | None]] = {
    "email": _whole,
    "aws_key": _whole,
    "aws_secret": _aws_secret_end,
    "iban": _iban_end,
    "card": _card_end,
    "phone_intl": _digit_count(7, 15),
    "phone_nanp": _whole,
    "phone_trunk": _digit_count(9, 12),
}
_KINDS: dict[str, str] = {name: name.partition("_")[0] if name.startswith("phone") else name for name in _PATTERNS}


def _scan(text: str, start: int, limit: int, counts: dict[str, int]) -> tuple[str, int]:
    """``text[start:cut]`` redacted, and ``cut``: ``limit``, or the end of a value that starts
    before ``limit`` and runs past it. ``text[:start]`` is context for the look-behinds only."""
    out: list[str] = []
    pos = copied = start
    while pos < limit:
        match = _PII.search(text, pos)
        if match is None or match.start() >= limit:
            break
        name = match.lastgroup or ""
        end = _CHECKS[name](match)
        if end is None:
            pos = match.start() + 1
            continue
        kind = _KINDS[name]
        out += (text[copied : match.start()], PLACEHOLDERS[kind])
        counts[kind] = counts.get(kind, 0) + 1
        pos = copied = end
    cut = max(limit, pos)
    out.append(text[copied:cut])
    return "".join(out), cut


def redact(text: str) -> tuple[str, dict[str, int]]:
    """``text`` with every value replaced by its placeholder, and how many of each kind."""
    counts: dict[str, int] = {}
    redacted, _ = _scan(text, 0, len(text), counts)
    return redacted, counts


class PiiRedactor(StreamValidator):
    """Redacts personal data and credentials from the answer as it streams, holding back the
    tail that could still be part of one; ``redactions`` counts what it replaced, by kind."""

    name = "pii"

    def __init__(self) -> None:
        self.redactions: dict[str, int] = {}
        self._context = ""  # the raw text just before ``_held``, already sent on
        self._held = ""

    def feed(self, text: str) -> str:
        if not text:
            return ""
        buffer = self._context + self._held + text
        start = len(self._context)
        limit = self._cut(buffer, start, fresh=len(buffer) - len(text))
        if limit <= start:
            self._held += text
            return ""
        redacted, cut = _scan(buffer, start, limit, self.redactions)
        self._context = buffer[max(0, cut - _CONTEXT) : cut]
        self._held = buffer[cut:]
        return redacted

    def finish(self) -> str:
        buffer = self._context + self._held
        redacted, _ = _scan(buffer, len(self._context), len(buffer), self.redactions)
        self._context = self._held = ""
        self.outcome = "redacted" if self.redactions else "ok"
        return redacted

    @staticmethod
    def _cut(buffer: str, start: int, fresh: int) -> int:
        """Where ``buffer`` can be cut now. The held text has no cut in it but for a space at its
        end, which the next character settles: so only that and the fresh text are searched."""
        cut = start
        for found in _BREAK.finditer(buffer, max(start, fresh - 1)):
            cut = found.end()
        if len(buffer) - cut > HOLD_BACK_LIMIT:
            cut = len(buffer) - _LONGEST_READ
        return cut
