"""Numbers and clock times to words and back, including ASR-like transcripts."""
import pytest

from s2s.data.numbers import number_to_words, numbers_in, parse_time, says_a_number, time_to_words, words_to_number

EDGES = [0, 1, 9, *range(10, 21), 21, 99, 100, 101, 105, 110, 999, 1000, 1001, 1010, 10_000, 100_000, 100_005,
         110_000, 999_999]


def test_number_words_round_trip():
    values = [*EDGES, *(-n for n in EDGES), *range(-1200, 1201), *range(-999_999, 1_000_000, 997)]
    for n in values:
        words = number_to_words(n)
        assert words_to_number(words) == n, (n, words)
        assert words_to_number(words.upper().replace(" ", "-") + "!") == n, words
        assert not any(c.isdigit() for c in words) and " and " not in words


def test_number_words_convention():
    assert number_to_words(105) == "one hundred five"
    assert number_to_words(42) == "forty two"
    assert number_to_words(-7) == "minus seven"
    assert number_to_words(999_999) == "nine hundred ninety nine thousand nine hundred ninety nine"
    for bad in (1_000_000, -1_000_000, 2.0, True):
        with pytest.raises(ValueError, match="integer between"):
            number_to_words(bad)


@pytest.mark.parametrize("text, value", [
    ("The answer is Forty-Two.", 42),
    ("minus 3", -3),
    ("Negative three.", -3),
    ("It is -12.", -12),
    ("one hundred and five", 105),
    ("A hundred apples", 100),
    ("1,000 people", 1000),
    ("Each friend gets 2.0", 2),
    ("i think it's twenty one", 21),
    ("Three plus eight is eleven.", 11),  # the last number is the answer
    ("about 3.5", None),
    ("it's 9:45", None),  # a time, not an integer
    ("no idea", None),
    ("", None),
])
def test_words_to_number_reads_messy_transcripts(text, value):
    assert words_to_number(text) == value


def test_numbers_in_keeps_neighbouring_numbers_apart():
    assert numbers_in("two, four, six, eight") == [2, 4, 6, 8]
    assert numbers_in("nine forty five") == [9, 45]
    assert numbers_in("seven. Ten people came") == [7, 10]
    assert numbers_in("one hundred two three, nineteen hundred") == [102, 3, 1900]
    assert numbers_in("3, 4 and 1,250") == [3, 4, 1250]


def test_time_words_round_trip():
    for hour in range(24):
        for minute in range(60):
            words = time_to_words(hour, minute)
            assert parse_time(words) == (hour % 12 or 12, minute), words
            assert parse_time(f"It will be {words.title()}.") == (hour % 12 or 12, minute)
    assert time_to_words(19, 30) == "seven thirty"
    assert time_to_words(10, 5) == "ten oh five"
    assert time_to_words(0, 0) == "twelve o'clock"
    with pytest.raises(ValueError, match="hour 0-23"):
        time_to_words(7, 60)


@pytest.mark.parametrize("text, time", [
    ("it's 9:45", (9, 45)),
    ("It's 9:45.", (9, 45)),
    ("nine forty five", (9, 45)),
    ("It will be Ten oh five.", (10, 5)),
    ("seven o'clock", (7, 0)),
    ("Seven O'Clock", (7, 0)),
    ("7 45", (7, 45)),
    ("half past seven", (7, 30)),
    ("a quarter to one", (12, 45)),
    ("from six twenty to seven forty", (7, 40)),  # the last time
    ("in twelve minutes", None),
    ("seven. Ten people", None),
    ("seven five", None),
    ("It is 25:10", None),
])
def test_parse_time_reads_messy_transcripts(text, time):
    assert parse_time(text) == time


@pytest.mark.parametrize("word, says", [("forty", True), ("Twelve.", True), ("minus", True), ("o'clock", True),
                                        ("oh", True), ("hundred", True), ("12", True), ("9:45.", True),
                                        ("answer", False), ("is", False), ("often", False), ("times", False),
                                        ("The", False), ("pepper", False)])
def test_says_a_number_finds_the_words_a_spoken_answer_is_made_of(word, says):
    assert says_a_number(word) is says
