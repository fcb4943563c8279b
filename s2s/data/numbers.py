"""Numbers and clock times as spoken words, and back again.

espeak-ng speaks the questions and replies of the reasoning corpus, and an ASR
model later transcribes the spoken answers, so both directions live here.

Conventions, chosen so that espeak-ng reads them plainly:
* Numbers are US style without "and" and without hyphens: 105 is "one hundred
  five", 42 is "forty two", -7 is "minus seven".
* Times are on a 12-hour clock without a.m./p.m. (the problems never need
  them): 7:30 is "seven thirty", 10:05 is "ten oh five", 9:00 is
  "nine o'clock"; hours 0 and 12 are both "twelve".

The parsers are lenient because they read ASR transcripts: any case, any
punctuation, digits or words, hyphens, "negative", "a hundred", "one hundred
and five", "1,000". When a text holds several numbers (or times) the parsers
return the last one, the way a reply usually ends on its answer.
"""
from __future__ import annotations

import re

UNITS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
LIMIT = 999_999
HALF_DAY = 12 * 60  # minutes on a 12-hour clock face

_SMALL = {word: value for value, word in enumerate(UNITS + TEENS)}
_TENS = {word: 10 * value for value, word in enumerate(TENS) if word != "_"}
_SIGNS = ("minus", "negative")
_OCLOCK = ("o'clock", "oclock")
_OH = ("oh", "o", "zero")
_NUMBER_WORDS = frozenset({*_SMALL, *_TENS, "hundred", "thousand", *_SIGNS, *_OCLOCK, *_OH})  # says_a_number

# Digits first ("1,000", "9:45", "-3", "2.0"), then words (with an apostrophe
# for "o'clock" and "it's"), then sentence punctuation, which ends a number:
# "seven. Ten people" is two numbers, never seventy or a time.
_TOKEN = re.compile(
    r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?![\d,])|(?<![\w.])-?\d+(?:[.:]\d+)?|[a-z]+(?:'[a-z]+)?|[.,;!?]")


def number_to_words(n: int) -> str:
    """`n` in words, for example 105 -> "one hundred five", -7 -> "minus seven"."""
    if isinstance(n, bool) or not isinstance(n, int) or abs(n) > LIMIT:
        raise ValueError(f"number_to_words takes an integer between -{LIMIT} and {LIMIT}, got {n!r}")
    if n < 0:
        return "minus " + number_to_words(-n)
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    parts = [_below_thousand(thousands) + " thousand"] if thousands else []
    if rest:
        parts.append(_below_thousand(rest))
    return " ".join(parts)


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [UNITS[hundreds] + " hundred"] if hundreds else []
    if rest >= 20:
        parts.append(TENS[rest // 10] + (" " + UNITS[rest % 10] if rest % 10 else ""))
    elif rest:
        parts.append((UNITS + TEENS)[rest])
    return " ".join(parts)


def time_to_words(hour: int, minute: int) -> str:
    """A clock time in words on a 12-hour clock: (7, 5) -> "seven oh five", (19, 0) -> "seven o'clock"."""
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"time_to_words takes an hour 0-23 and a minute 0-59, got {hour}:{minute}")
    spoken_hour = number_to_words(hour % 12 or 12)
    if minute == 0:
        return f"{spoken_hour} o'clock"
    if minute < 10:
        return f"{spoken_hour} oh {number_to_words(minute)}"
    return f"{spoken_hour} {number_to_words(minute)}"


def clock(minutes: int) -> str:
    """H:MM on a 12-hour clock for `minutes` after twelve o'clock (any integer: the clock wraps)."""
    minutes %= HALF_DAY
    return f"{minutes // 60 or 12}:{minutes % 60:02d}"


def clock_minutes(hour: int, minute: int) -> int | None:
    """`clock` undone: minutes after twelve o'clock of H:MM (1 <= H <= 12); None for a time no clock shows."""
    return hour % 12 * 60 + minute if 1 <= hour <= 12 and 0 <= minute <= 59 else None


def tokenize(text: str) -> list[str]:
    """Lower-case words, digit groups and sentence punctuation of `text`; hyphens split words."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'").replace("\u2212", "-"))


def says_a_number(word: str) -> bool:
    """Whether `word` (one whitespace word of a sentence) says a number or part of one: "forty", "minus",
    "o'clock", "12", "9:45". A reply's words before the first such word commit to no answer."""
    return any(token in _NUMBER_WORDS or token[-1:].isdigit() for token in tokenize(word))


def _digits(token: str) -> int | None:
    """The integer a digit token stands for; None for times ("9:45") and fractions ("3.5")."""
    if ":" in token:
        return None
    whole, _, fraction = token.replace(",", "").partition(".")
    if fraction.strip("0"):
        return None
    return int(whole) if whole not in ("", "-") else None


def _read_words(tokens: list[str], start: int) -> tuple[int, int] | None:
    """The number spelled by the words at `tokens[start:]`, as (value, tokens used)."""
    total, current, last, i = 0, 0, None, start
    while i < len(tokens):
        word = tokens[i]
        if word == "a" and last is None and i + 1 < len(tokens) and tokens[i + 1] in ("hundred", "thousand"):
            current, last = 1, "unit"
        elif word in _SMALL and (last in (None, "hundred", "thousand") or (last == "tens" and 0 < _SMALL[word] < 10)):
            if word == "zero" and last is not None:
                break
            current, last = current + _SMALL[word], ("unit" if _SMALL[word] < 10 else "teen")
        elif word in _TENS and last in (None, "hundred", "thousand"):
            current, last = current + _TENS[word], "tens"
        elif word == "hundred" and last in ("unit", "teen", "tens") and 0 < current < 100:
            current, last = current * 100, "hundred"
        elif word == "thousand" and last in ("unit", "teen", "tens", "hundred") and total == 0 and 0 < current < 1000:
            total, current, last = current * 1000, 0, "thousand"
        elif (word == "and" and last in ("hundred", "thousand") and i + 1 < len(tokens)
              and (tokens[i + 1] in _SMALL or tokens[i + 1] in _TENS)):
            pass
        else:
            break
        i += 1
    if last is None:
        return None
    return total + current, i - start


def numbers_in(text: str) -> list[int]:
    """Every integer in `text`, in order, whether written in digits or in words."""
    tokens, found, i, sign = tokenize(text), [], 0, 1
    while i < len(tokens):
        token = tokens[i]
        if token in _SIGNS:
            sign, i = -1, i + 1
            continue
        value, used = None, 1
        if token[0].isdigit() or token[0] == "-":
            value = _digits(token)
        else:
            read = _read_words(tokens, i)
            if read:
                value, used = read
        if value is not None:
            found.append(sign * value)
        sign, i = 1, i + used
    return found


def words_to_number(text: str) -> int | None:
    """The last integer in `text` ("The answer is Forty-Two." -> 42), or None when it holds none."""
    found = numbers_in(text)
    return found[-1] if found else None


def _hour(token: str) -> int | None:
    if token.isdigit():
        return int(token) if int(token) <= 23 else None
    return _SMALL.get(token) if 1 <= _SMALL.get(token, 0) <= 12 else None


def _time_at(tokens: list[str], i: int) -> tuple[int, int, int] | None:
    """The time starting at `tokens[i]`, as (hour, minute, tokens used), or None."""
    token, after = tokens[i], tokens[i + 1:i + 3]
    clock = re.fullmatch(r"(\d{1,2})[:.](\d{2})", token)
    if clock:
        hour, minute = int(clock[1]), int(clock[2])
        return (hour, minute, 1) if hour <= 23 and minute <= 59 else None
    if token in ("noon", "midday", "midnight"):
        return 12, 0, 1
    if token in ("half", "quarter") and len(after) == 2 and after[0] in ("past", "to") and _hour(after[1]):
        hour, minute = _hour(after[1]), 30 if token == "half" else 15
        if after[0] == "to":
            hour, minute = (hour - 2) % 12 + 1, 60 - minute
        return hour, minute, 3
    hour = _hour(token)
    if hour is None or not after:
        return None
    if after[0] in _OCLOCK or after == ["o", "clock"]:
        return hour, 0, 1 + (after[0] == "o") + 1
    if after[0] in _OH and len(after) == 2 and 1 <= _SMALL.get(after[1], 0) <= 9:
        return hour, _SMALL[after[1]], 3
    if re.fullmatch(r"\d{2}", after[0]) and int(after[0]) <= 59:
        return hour, int(after[0]), 2
    read = _read_words(tokens, i + 1) if after[0] not in _SMALL or _SMALL[after[0]] >= 10 else None
    if read and 10 <= read[0] <= 59:
        return hour, read[0], 1 + read[1]
    return None


def parse_time(text: str) -> tuple[int, int] | None:
    """The last clock time in `text` as (hour, minute): "it's 9:45" and "nine forty five" give (9, 45)."""
    tokens, found, i = tokenize(text), None, 0
    while i < len(tokens):
        time = _time_at(tokens, i)
        if time:
            found, i = time[:2], i + time[2]
        else:
            i += 1
    return found
