"""Answer parsing: option letters, one time span, ranked windows; ovis_model's old names."""

from __future__ import annotations

import pytest

import ovis_model
import ovis_model.parsing
from vidsel.eval import extract_choice, parse_spans, parse_time_span

OPTIONS = ["a dog", "a red car", "a tree", "a house"]


@pytest.mark.parametrize("text,letter", [
    ("B", "B"),
    ("b", "B"),
    ("(C) a cat", "C"),
    ("C) a cat", "C"),
    ("B. a red car", "B"),
    ("[D]", "D"),
    ("The answer is D.", "D"),
    ("The answer is (C).", "C"),
    ("The best answer is: B", "B"),
    ("Answer: b", "B"),
    ("Answer: (a)", "A"),
    ("answer = c", "C"),
    ("Answer:\n\nD", "D"),
    ("**B**", "B"),
    ("The answer is **(c)**.", "C"),
    ("<answer>B</answer>", "B"),
    ("<think>A looks right, or maybe B</think>\nC", "C"),
    ("I think it is option B", "B"),
    ("I'd pick B because it fits", "B"),
    ("After watching, it is D.", "D"),
    # option text fallback
    ("a red car", "B"),
    ("It is a red car.", "B"),
    ("A tree stands there", "C"),  # the article "A" is not option A
    # nothing to read
    ("nothing", None),
    ("", None),
    ("I am not sure", None),  # "I" is a word, not option I (and there are only 4)
])
def test_extract_choice(text, letter):
    assert extract_choice(text, 4, OPTIONS) == letter


def test_extract_choice_letters_beyond_the_options_are_ignored():
    assert extract_choice("E", 4) is None
    assert extract_choice("The answer is E, no, B.", 4) == "B"
    assert extract_choice("E", 5) == "E"
    assert extract_choice("B", 0) is None


def test_extract_choice_text_fallback_prefers_the_longest_containing_option():
    opts = ["a car", "a red car", "a tree"]
    assert extract_choice("it was a red car", 3, opts) == "B"
    # two unrelated options named: ambiguous
    assert extract_choice("a car or a tree", 3, opts) is None


def test_extract_choice_lower_case_article_is_not_a_letter():
    # "a" followed by a word is the article; the text fallback decides
    assert extract_choice("The answer is a dog", 2, ["cat", "dog"]) == "B"
    assert extract_choice("The answer is a.", 2, ["cat", "dog"]) == "A"


@pytest.mark.parametrize("text,span", [
    ("The event happens in 12.3 - 15.0 seconds.", (12.3, 15.0)),
    ("from 3 to 7.5", (3.0, 7.5)),
    ("between 2s and 5s", (2.0, 5.0)),
    ("3.5s-7s", (3.5, 7.0)),
    ("[12.0, 15.5]", (12.0, 15.5)),
    ("00:01:05 - 00:01:12", (65.0, 72.0)),
    ("from 1:05 to 1:12", (65.0, 72.0)),
    ("It starts at 1:05 and ends at 1:12", (65.0, 72.0)),  # two clocks, not joined
    ("from 1:05 to 72 seconds", (65.0, 72.0)),  # a clock and a number
    ("1.5 min to 2 minutes", (90.0, 120.0)),
    ("9.0 to 4.5 seconds", (4.5, 9.0)),  # swapped ends
    ("at 4 seconds, until 8", (4.0, 8.0)),
    ("Qwen2 sees it at 3 - 5 s", (3.0, 5.0)),  # "2" of a word is no time
    ("2 people appear; from 10 to 14", (10.0, 14.0)),  # the joined pair wins
    ("<think>maybe 1 - 2</think> 30 to 40", (30.0, 40.0)),
    ("no idea", None),
    ("at 5 seconds", None),
])
def test_parse_time_span(text, span):
    got = parse_time_span(text)
    if span is None:
        assert got is None
    else:
        assert got == pytest.approx(span)


def test_parse_time_span_clips_to_duration():
    assert parse_time_span("20 - 40 seconds", duration=30.0) == (20.0, 30.0)
    assert parse_time_span("-5 to 3", duration=30.0) == (3.0, 5.0)  # no negative times


@pytest.mark.parametrize("text,spans", [
    ("[[2, 6], [10, 14]]", [(2.0, 6.0), (10.0, 14.0)]),
    ("0:02-0:06, 0:10-0:14", [(2.0, 6.0), (10.0, 14.0)]),
    ("The moments are 30 to 40 seconds and 2 - 6 seconds.", [(30.0, 40.0), (2.0, 6.0)]),
    ("0-10, 20-30, 0-10", [(0.0, 10.0), (20.0, 30.0)]),  # exact repeats dropped, order kept
    ("from 3 to 7", [(3.0, 7.0)]),
    ("It starts at 1:05 and ends at 1:12", [(65.0, 72.0)]),  # the single-span fallback
    ("nothing relevant", []),
])
def test_parse_spans(text, spans):
    assert parse_spans(text) == spans  # exact: every value here is a short decimal


def test_parse_spans_duration_clips_and_drops_windows_past_the_end():
    assert parse_spans("0-10, 20-30, 5-40", duration=12.0) == [(0.0, 10.0), (5.0, 12.0)]


def test_ovis_model_reexports_the_same_functions():
    assert ovis_model.parsing.extract_choice is extract_choice
    assert ovis_model.parsing.parse_time_span is parse_time_span
    assert ovis_model.extract_choice is extract_choice
    assert ovis_model.parse_time_span is parse_time_span


def test_extract_choice_reasoning_and_echoed_options():
    cot = ("Option A shows a dog, but the car is red. The answer is not obvious at first. "
           "Looking again, the answer is C.")
    assert extract_choice(cot, 4) == "C"  # the last "answer is X"
    echoed = "Options: A. a dog B. a red car C. a tree D. a house\nAnswer: D"
    assert extract_choice(echoed, 4, OPTIONS) == "D"  # "Options:" is not "option X"
