"""Subtitles: SubRip / WebVTT / LongVideoBench JSON files as real tools and datasets write them,
and the lines shown at the frames a selection picked."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.eval import Subtitle, load_subtitles, parse_srt, subtitles_at

CLEAN = """1
00:00:01,000 --> 00:00:02,500
Hello there.

2
00:00:03,000 --> 00:00:04,000
General <i>Kenobi</i>!

"""


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_parse_clean_srt(tmp_path: Path) -> None:
    subs = parse_srt(write(tmp_path, "a.srt", CLEAN))
    assert subs == [Subtitle(1.0, 2.5, "Hello there."), Subtitle(3.0, 4.0, "General Kenobi!")]


def test_bom_crlf_dot_millis_missing_index(tmp_path: Path) -> None:
    text = ("00:00:01.5 --> 00:00:02.25\r\nfirst\r\n\r\n"
            "7\r\n01:00:03,000 --> 01:00:04,000 X1:10 X2:20\r\nsecond\r\nline two\r\n")
    subs = parse_srt(write(tmp_path, "b.srt", b"\xef\xbb\xbf" + text.encode()))
    assert subs == [Subtitle(1.5, 2.25, "first"),
                    Subtitle(3603.0, 3604.0, "second line two")]


def test_videomme_font_tags_and_entities(tmp_path: Path) -> None:
    # Video-MME's .srt files wrap every line in <font color="white" size=".72c">
    text = ('1\n00:00:00,000 --> 00:00:01,000\n<font color="white" size=".72c">Tom &amp; '
            'Jerry</font>\n\n2\n00:00:01,000 --> 00:00:02,000\n{\\an8}<b></b>\n\n'
            '3\n00:00:02,000 --> 00:00:03,000\n<font color="white">ok</font>\n')
    subs = parse_srt(write(tmp_path, "v.srt", text))
    assert [s.text for s in subs] == ["Tom & Jerry", "ok"]  # the empty cue is dropped


def test_cues_without_blank_lines_and_blank_inside_text(tmp_path: Path) -> None:
    text = ("1\n00:00:01,000 --> 00:00:02,000\none\n2\n00:00:03,000 --> 00:00:04,000\ntwo\n\n"
            "still two\n\n3\n00:00:05,000 --> 00:00:06,000\n42\n")
    subs = parse_srt(write(tmp_path, "c.srt", text))
    assert [s.text for s in subs] == ["one", "two still two", "42"]


def test_cp1252_file_is_read_with_a_warning(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n"
    with caplog.at_level(logging.WARNING):
        subs = parse_srt(write(tmp_path, "d.srt", text.encode("cp1252")))
    assert subs[0].text == "café"
    assert "not UTF-8" in caplog.text


def test_unordered_cues_sorted_and_backwards_cue_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = ("1\n00:00:05,000 --> 00:00:06,000\nlate\n\n2\n00:00:01,000 --> 00:00:02,000\n"
            "early\n\n3\n00:00:09,000 --> 00:00:08,000\nbackwards\n")
    with caplog.at_level(logging.WARNING):
        subs = parse_srt(write(tmp_path, "e.srt", text))
    assert [s.text for s in subs] == ["early", "late"]
    assert "e.srt:10" in caplog.text and "dropped" in caplog.text


def test_bad_time_line_names_file_and_line(tmp_path: Path) -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:04,000\nbad\n"
    with pytest.raises(InvalidArgumentError, match=r"f\.srt:6: cannot read the time line"):
        parse_srt(write(tmp_path, "f.srt", text))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        parse_srt(tmp_path / "nope.srt")
    assert parse_srt(write(tmp_path, "empty.srt", "")) == []


def test_webvtt(tmp_path: Path) -> None:
    text = ("WEBVTT - title\n\nNOTE a comment\nthat spans lines\n\nSTYLE\n::cue { color: red }\n\n"
            "intro\n00:01.000 --> 00:02.000 align:start\n<v Roger>Hi</v>\n\n"
            "00:00:03.000 --> 00:00:04.000\nBye\n")
    subs = load_subtitles(write(tmp_path, "g.vtt", text))
    assert subs == [Subtitle(1.0, 2.0, "Hi"), Subtitle(3.0, 4.0, "Bye")]


def test_longvideobench_json_both_layouts(tmp_path: Path) -> None:
    lines = [{"start": "00:00:01.000", "end": "00:00:02.500", "line": "a"},
             {"start": "00:01:00.25", "end": "00:01:01", "line": "b"}]
    assert load_subtitles(write(tmp_path, "x_en.json", json.dumps(lines))) == [
        Subtitle(1.0, 2.5, "a"), Subtitle(60.25, 61.0, "b")]
    stamps = [{"timestamp": [0.0, 1.5], "text": " c "}, {"timestamp": [2.0, None], "text": "d"},
              {"timestamp": [4.0, None], "text": "e"}]
    subs = load_subtitles(write(tmp_path, "y_en.json", json.dumps(stamps)))
    assert subs[:2] == [Subtitle(0.0, 1.5, "c"), Subtitle(2.0, 4.0, "d")]  # open end: next start
    assert subs[2].start_s == 4.0 and math.isinf(subs[2].end_s)  # the last: to the end


def test_longvideobench_json_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"bad\.json:2: not valid JSON"):
        load_subtitles(write(tmp_path, "bad.json", '[\n{"start": }]'))
    with pytest.raises(InvalidArgumentError, match="line entry 1: cannot read the time"):
        load_subtitles(write(tmp_path, "bad2.json", json.dumps(
            [{"start": "00:00:01", "end": "00:00:02", "line": "a"},
             {"start": "soon", "end": "later", "line": "b"}])))
    with pytest.raises(InvalidArgumentError, match="expected a JSON list"):
        load_subtitles(write(tmp_path, "bad3.json", "{}"))


def test_subtitles_at_follows_the_frames() -> None:
    subs = [Subtitle(0.0, 2.0, "one"), Subtitle(2.0, 4.0, "two"), Subtitle(6.0, 8.0, "three"),
            Subtitle(10.0, 10.0, "blink"), Subtitle(12.0, 14.0, "one")]
    # frames out of order; 5.0 falls between lines; 2.0 belongs to "two" (half-open)
    assert subtitles_at(subs, np.array([7.0, 2.0, 5.0, 0.5, 1.0])) == ["one", "two", "three"]
    assert subtitles_at(subs, [10.0]) == ["blink"]  # a zero-length line, at its instant only
    assert subtitles_at(subs, [13.0, 0.1]) == ["one"]  # the same text once
    assert subtitles_at(subs, [5.0, 9.0]) == []
    assert subtitles_at([], [1.0]) == [] and subtitles_at(subs, []) == []


def test_subtitles_at_offset_longvideobench_clock() -> None:
    # LongVideoBench: subtitle times are on the source clock, the clip starts 100 s into it
    subs = [Subtitle(100.0, 102.0, "start"), Subtitle(150.0, 152.0, "middle")]
    assert subtitles_at(subs, [1.0, 51.0], offset_s=-100.0) == ["start", "middle"]
    assert subtitles_at(subs, [101.0], offset_s=-100.0) == []


def test_subtitles_at_rejects_nan_and_bad_subtitle() -> None:
    with pytest.raises(InvalidArgumentError, match="finite"):
        subtitles_at([Subtitle(0.0, 1.0, "a")], [float("nan")])
    with pytest.raises(InvalidArgumentError, match="end_s >= start_s"):
        Subtitle(2.0, 1.0, "x")
