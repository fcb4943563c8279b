"""normalise_question: transcripts as Whisper (and people) write them -> the reasoner's written question."""
import pytest

from s2s.hearing.normalise import normalise_question

# Whisper tiny.en's own transcripts of spoken corpus questions, and what the reasoner reads.
WHISPER_CASES = [
    ("Calculate 10 minus 2 times 7 plus 1", "Calculate 10 - 2 × 7 + 1."),
    ("How much is 2 times 1 minus 8?", "How much is 2 × 1 - 8?"),
    ("Work out four times seven minus five plus seven.", "Work out 4 × 7 - 5 + 7."),
    ("a film starts at 3.15 and ends at 4.10. How many minutes long is it?",
     "A film starts at 3:15 and ends at 4:10. How many minutes long is it?"),
    ("A bus leaves at 405 and the trip takes 120 minutes. When does it arrive?",
     "A bus leaves at 4:05 and the trip takes 120 minutes. When does it arrive?"),
    ("A lesson runs from 1055 to 1125. How many minutes does it last?",
     "A lesson runs from 10:55 to 11:25. How many minutes does it last?"),
    ("The clock shows 10 43. What did it show 30 minutes earlier?",
     "The clock shows 10:43. What did it show 30 minutes earlier?"),
    ("which one is greater, five times 12 or 55.", "Which one is greater, 5 × 12 or 55."),
    ("How many times does the word pepper contain the letter p?",
     "How many times does the word pepper contain the letter P?"),
    ("What comes next? 40, 33, 26, 19, 12.", "What comes next? 40, 33, 26, 19, 12."),
    # Prompted to write digits, Whisper writes the pronoun "one" as 1 too; no number was said there.
    ("Here's 1, here's a pattern for 8, 16, 32, 64, what's next?",
     "Here's one, here's a pattern for 8, 16, 32, 64, what's next?"),
    ("Here is 1. What is 4 + 16?", "Here is one. What is 4 + 16?"),
    ("Which 1 is bigger, 5 or 7?", "Which one is bigger, 5 or 7?"),
    ("Which is bigger, 1 or 7?", "Which is bigger, 1 or 7?"),
    ("Here's 1 more: what is 2 + 1?", "Here's 1 more: what is 2 + 1?"),
]
# As people type or say them.
TYPED_CASES = [
    ("what's twenty one plus four", "What's 21 + 4?"),
    ("WHAT IS 7*3", "What is 7 × 3?"),
    ("whats 12 times 3 minus 4", "What's 12 × 3 - 4?"),
    ("what comes next 2 4 6 8", "What comes next 2, 4, 6, 8?"),
    ("what comes next: 3,8,13", "What comes next: 3, 8, 13?"),
    ("sam has 12 apples and gives away 5. how many does he have left", "Sam has 12 apples and gives away 5. How "
     "many does he have left?"),
    ("i'd like to know what 7 plus 5 is", "I'd like to know what 7 + 5 is."),
    ("what is 7x3+2", "What is 7 × 3 + 2?"),
    # A sum on its own asks for its value; brackets around numbers are arithmetic, not a sound Whisper heard.
    ("7*8", "What is 7 × 8?"),
    ("SEVEN TIMES EIGHT", "What is 7 × 8?"),
    ("80 - 3 x 5 =", "What is 80 - 3 × 5?"),
    ("(3+4)*2", "What is (3 + 4) × 2?"),
    ("what is (3 + 4) times 2", "What is (3 + 4) × 2?"),
    ("(laughs) seven times eight", "What is 7 × 8?"),
    ("12", "12."),
    ("What is 7 x 3", "What is 7 × 3?"),
    ("what is one thousand two hundred and five minus 5", "What is 1205 - 5?"),
    ("Sam has a hundred apples and gives away 1,000", "Sam has 100 apples and gives away 1000."),
    ("It is four o'clock. What time will it be in 25 minutes", "It is 4:00. What time will it be in 25 minutes?"),
    ("It is four oh five now. What time was it 20 minutes ago?", "It is 4:05 now. What time was it 20 minutes ago?"),
    ("it is half past four. what time will it be in ten minutes", "It is 4:30. What time will it be in 10 minutes?"),
    ("It is quarter to twelve. What time will it be in 5 minutes?", "It is 11:45. What time will it be in 5 minutes?"),
    ("Which is bigger, seventy two or twenty seven", "Which is bigger, 72 or 27?"),
]


@pytest.mark.parametrize(("heard", "written"), WHISPER_CASES + TYPED_CASES)
def test_transcripts_become_the_written_question(heard, written):
    assert normalise_question(heard) == written


def test_numbers_that_are_not_times_stay_numbers():
    # No clock in the question: a three-digit number is a number, and "times" between words is a word.
    assert normalise_question("Is 972 or 959 greater?") == "Is 972 or 959 greater?"
    assert normalise_question("How many times does the word summer contain the letter m?").count("×") == 0
    assert normalise_question("It took 125 minutes") == "It took 125 minutes."


def test_non_speech_tags_leave_nothing():
    assert normalise_question("(upbeat music)") == ""
    assert normalise_question("[BLANK_AUDIO]") == ""
    assert normalise_question("♪ ♪") == ""


def test_every_spoken_corpus_question_normalises_to_its_written_form():
    """The generator says numbers in words ("twenty one plus four"), as a perfect ear would write them; the
    normaliser must give back exactly the written question the reasoner trained on, and leave that unchanged."""
    from s2s.data.problems import ALL_FAMILIES, generate_problems

    for split in ("train", "phrasing", "stretch"):
        for family in ALL_FAMILIES:
            for problem in generate_problems(150, seed=23, families=[family], split=split):
                assert normalise_question(problem.question) == problem.question_written, problem.question
                assert normalise_question(problem.question_written) == problem.question_written
