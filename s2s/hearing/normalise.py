"""A transcript as a recogniser writes it -> the written question the reasoner reads.

Whisper, people typing and our own CTC ear write the same question many ways:
"What is twenty one plus 4", "what's 21+4?", "It is 4.05", "at 405", "four
o'clock", "half past four". The reasoner reads one form, the corpus's
`question_written` (`s2s/data/problems.py`): digits, the operators + - ×,
clock times as H:MM and a capital first letter. Normalising here, a few rules
that are easy to test, means any recogniser (or keyboard) reaches the model in
the form it learnt, instead of every model learning every spelling.

    normalise_question("what is twenty one plus four times 3")  -> "What is 21 + 4 × 3?"
    normalise_question("It is 3.25. What time will it be in forty minutes")
        -> "It is 3:25. What time will it be in 40 minutes?"
"""
from __future__ import annotations

import re

from s2s.data.numbers import _OCLOCK, _SMALL, _TENS, _read_words

# Operators between two numbers (and only there: "How many times does ..." keeps its "times").
_OPERATOR_WORDS = (("multiplied by", "×"), ("times", "×"), ("x", "×"), ("*", "×"), ("plus", "+"), ("add", "+"),
                   ("minus", "-"), ("take away", "-"))
# Words after which a bare 3-4 digit number is a clock time in a question about time: "at 405", "from 1055".
_CLOCK_CUES = ("at", "from", "to", "is", "shows", "show", "until", "till", "by", "it's", "between", "and", "before",
               "after")
_TIME_QUESTION = re.compile(r"\b(clock|time|minutes?|hours?|leaves|arrives?|starts|ends|runs|lasts?)\b", re.I)
_NUMBER_WORDS = {*_SMALL, *_TENS, "hundred", "thousand"}
# A sentence that starts so asks something ("What is 4 + 5" gets "?"); any other gets ".".
_ASKS = re.compile(r"(what|which|how|when|who|where|why|is|are|does|do|can|could|will|would)\b", re.I)
# Whisper's tags for sound that is not speech.
_NON_SPEECH = re.compile(r"[\[(][^\])\d]*[A-Za-z][^\])\d]*[\])]|♪+")  # "(laughs)", "[MUSIC]"; not "(3 + 4)"


# "1" where it can only be the pronoun "one": Whisper, prompted to write digits, writes "Here's 1," or "Which 1 is
# bigger?"; the question holds no number there.
_PRONOUN_DIGIT = re.compile(r"\b(here's|here is|which|this|that|each|every|another)( +)1\b"
                            r"(?=\s*(?:[,.:;?!]|$)|\s+(?:of|is)\b)", re.I)

# Numbers joined by operators and nothing else (brackets and a closing "=" or "?" allowed).
_BARE_SUM = re.compile(r"[(\s]*-?\d+(?:\.\d+)?[)\s]*(?:[-+×÷/][(\s]*-?\d+(?:\.\d+)?[)\s]*)+[=?.!\s]*")


def normalise_question(text: str) -> str:
    """The written form of a heard or typed question (see the module docstring); "" when no words are left."""
    text = _NON_SPEECH.sub(" ", text)
    text = text.replace("\u2019", "'").replace("\u2212", "-").replace("–", "-").replace("—", "-")
    if text.isupper():  # typed in capitals: the reasoner reads sentence case
        text = text.lower()
    text = re.sub(r"\b(what|how|that|it)s\b", r"\1's", text, flags=re.I)  # "whats" -> "what's"
    text = re.sub(r"\bi\b", "I", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(?<=\d),(?=\d)", ", ", text)  # 2,4,6 -> 2, 4, 6
    text = re.sub(r"(?<=[\d)])\s*([+*×x÷/-])\s*(?=[\d(])", r" \1 ", text)  # 21+4 -> 21 + 4, (3+4)*2 too
    text = _spell_out_words(text)
    text = _PRONOUN_DIGIT.sub(r"\1\2one", text)
    text = _clock_times(text)
    text = _operators(text)
    text = re.sub(r"(?<![\d:,] )(?<![\d:])\b\d+(?: \d+){2,}\b(?![:\d])", lambda m: ", ".join(m[0].split()), text)
    text = re.sub(r"\s+([,.?!:;])", r"\1", " ".join(text.split()))
    text = re.sub(r"\bthe letter ([a-z])\b", lambda m: f"the letter {m[1].upper()}", text, flags=re.I)
    if not text:
        return ""
    if _BARE_SUM.fullmatch(text):  # "7*8", "seven times eight": a sum on its own asks for its value
        return f"What is {text.rstrip('.?!= ')}?"
    text = re.sub(r"(?:^|(?<=[.?!] ))([a-z])", lambda m: m[1].upper(), text)  # every sentence starts capitalised
    if text[-1] in ".?!":
        return text
    last = re.split(r"[.?!]\s+", text)[-1]  # the sentence that lacks its end
    return text + ("?" if _ASKS.match(last) else ".")


def _spell_out_words(text: str) -> str:
    """Number words -> digits: "twenty one" -> "21", "a hundred and five" -> "105"; "one" stays a word where
    it is a pronoun ("which one", "the one before")."""
    pieces = re.findall(r"[A-Za-z]+(?:'[a-z]+)?|[^A-Za-z]+", text)
    words = [p.lower() for p in pieces]
    out, i = [], 0
    while i < len(pieces):
        word = words[i]
        if (word in _NUMBER_WORDS and not _pronoun_one(words, i)) or \
                (word == "a" and i + 2 < len(words) and words[i + 2] in ("hundred", "thousand")):
            tokens, where = [], []  # the run of number words (and spaces/hyphens between them)
            j = i
            while j < len(pieces) and (words[j] in _NUMBER_WORDS or words[j] in ("and", "a") or
                                       (pieces[j].strip() in ("", "-") and j + 1 < len(pieces))):
                if pieces[j].strip() not in ("", "-"):
                    tokens.append(words[j])
                    where.append(j)
                j += 1
            read = _read_words(tokens, 0)
            if read:
                value, used = read
                out.append(str(value))
                i = where[used - 1] + 1
                continue
        out.append(pieces[i])
        i += 1
    return "".join(out)


def _pronoun_one(words: list[str], i: int) -> bool:
    if words[i] != "one":
        return False
    before = next((w for w in reversed(words[:i]) if w.strip()), "")
    after = next((w for w in words[i + 1:] if w.strip()), "")
    operand = before in ("plus", "minus", "times", "by", "than", "away", "and", "from", "to")
    return before in ("which", "the", "this", "that", "each", "every", "no", "any", "next", "here's", "another") \
        or (after in ("of", "is") and not operand)


def _clock_times(text: str) -> str:
    """Clock times as H:MM: "4.05", "4 05" (after a clock cue), "405" (in a time question, after a cue),
    "4 o'clock", "half past four", "quarter to 5"."""
    text = re.sub(r"\b(1[0-2]|[1-9])\.([0-5]\d)\b", r"\1:\2", text)
    text = re.sub(r"\b(1[0-2]|[1-9]) (?:o'clock|oclock|o clock)\b", r"\1:00", text, flags=re.I)
    for word in _OCLOCK:
        text = re.sub(rf"\b(1[0-2]|[1-9]) {word}\b", r"\1:00", text, flags=re.I)
    text = re.sub(r"\b(1[0-2]|[1-9]) (?:oh|o) ([1-9])\b", r"\1:0\2", text, flags=re.I)
    text = re.sub(r"\bhalf past (1[0-2]|[1-9])\b", r"\1:30", text, flags=re.I)
    text = re.sub(r"\bquarter past (1[0-2]|[1-9])\b", r"\1:15", text, flags=re.I)
    text = re.sub(r"\bquarter to (1[0-2]|[1-9])\b", lambda m: f"{(int(m[1]) - 2) % 12 + 1}:45", text, flags=re.I)
    if _TIME_QUESTION.search(text):
        cue = "|".join(re.escape(c) for c in _CLOCK_CUES)
        text = re.sub(rf"\b({cue}) (1[0-2]|[1-9]) ([0-5]\d)\b(?! minutes)", r"\1 \2:\3", text, flags=re.I)
        text = re.sub(rf"\b({cue}) (1[0-2]|[1-9])([0-5]\d)\b(?! minutes)", r"\1 \2:\3", text, flags=re.I)
    return text


def _operators(text: str) -> str:
    """Operator words between two numbers -> + - ×."""
    for word, symbol in _OPERATOR_WORDS:
        text = re.sub(rf"(?<=[\d)]) +{re.escape(word)} +(?=[\d(])", f" {symbol} ", text, flags=re.I)
    return text
