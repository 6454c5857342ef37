"""Findings of a new user of the command line (each test failed before its fix)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidsel.cli import main

from .conftest import CLIP_KW


@pytest.fixture(autouse=True)
def _no_user_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file or environment defaults of the machine running the tests."""
    for var in ("VIDSEL_EMBEDDER", "VIDSEL_DEVICE", "VIDSEL_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


# -- 1: a bad option value / --param value / embedder spec is a usage error (exit 2) ----------


@pytest.mark.parametrize("extra, needle", [
    (["--method", "codec", "--param", "camera=bogus"], "camera='bogus'"),
    (["--embedder", "bogus:x", "-Q", "a box"], "unknown embedder kind 'bogus'"),
    (["--embedder", "bogus", "-Q", "a box"], "is not an embedder spec"),
    (["--embedder", "open_clip:ViT-B-32", "-Q", "a box"], "open_clip:ViT-B-32@random"),
])
def test_bad_values_are_usage_errors(clip: str, extra: list[str], needle: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", clip, *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "InvalidArgumentError" not in err  # like the other usage errors: no class name


def test_unknown_open_clip_model_is_a_usage_error(clip: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("open_clip")
    assert main(["select", clip, "-Q", "a box", "--embedder", "open_clip:NoSuchNet@random"]) == 2
    assert "NoSuchNet" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["hf:/nonexistent/siglip", "/nonexistent/siglip"])
def test_well_formed_spec_without_weights_is_not_a_usage_error(
        clip: str, spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", clip, "-Q", "a box", "--embedder", spec]) == 1
    assert "ModelNotAvailableError" in capsys.readouterr().err


def test_batch_refuses_a_malformed_embedder_before_any_video(
        clip: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    assert main(["batch", clip, "--out", str(out), "--embedder", "bogus:x", "-Q", "q"]) == 2
    assert "unknown embedder kind" in capsys.readouterr().err
    assert not out.exists()


# -- 2: an output that cannot be written is a vidsel error; folders are created ---------------


def test_unwritable_outputs_are_vidsel_errors(clip: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", clip, "--method", "uniform", "--out", "/proc/x.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "OutputError" in err and "/proc/x.jsonl" in err and "Traceback" not in err
    assert main(["select", clip, "--method", "uniform", "-o", "/proc/x/y.json"]) == 1
    err = capsys.readouterr().err
    assert "OutputError" in err and "/proc/x/y.json" in err


def test_output_folders_are_created_alike(clip: str, tmp_path: Path) -> None:
    assert main(["select", clip, "--method", "uniform", "-o", str(tmp_path / "a/b/s.json")]) == 0
    assert (tmp_path / "a/b/s.json").is_file()
    assert main(["batch", clip, "--method", "uniform", "--out",
                 str(tmp_path / "c/d/r.jsonl")]) == 0
    assert (tmp_path / "c/d/r.jsonl").is_file()
    assert main(["inspect", clip, "--no-motion", "--json", str(tmp_path / "e/f/i.json")]) == 0
    assert (tmp_path / "e/f/i.json").is_file()


# -- 3: -q quiets logs, not the result --------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["-q", "select", "{clip}", "--method", "uniform"],
    ["select", "{clip}", "--method", "uniform", "-q"],
    ["-q", "inspect", "{clip}", "--no-motion"],
])
def test_quiet_still_prints_the_result(clip: str, argv: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main([a.format(clip=clip) for a in argv]) == 0
    out = capsys.readouterr().out
    assert clip in out and out.strip()


# -- 4: a file reached by a folder and a glob is skipped once ---------------------------------


def test_batch_counts_a_skipped_file_once(tmp_path: Path, make_synth: Callable[..., Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    vids = tmp_path / "vids"
    (vids / "sub").mkdir(parents=True)
    shutil.copy(make_synth(".mp4", **CLIP_KW).path, vids / "a.mp4")
    shutil.copy(make_synth(".mp4", **{**CLIP_KW, "seed": 3}).path, vids / "sub" / "b.mp4")
    (vids / "sub" / "empty_0bytes.mp4").write_bytes(b"")
    rc = main(["-v", "batch", str(vids), str(vids / "sub" / "*.mp4"), "--method", "uniform",
               "--out", str(tmp_path / "r.jsonl")])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "1 file was not" in text
    assert text.count("skipped: " + str(vids / "sub" / "empty_0bytes.mp4")) == 1


# -- 5: wording ------------------------------------------------------------------------------


def test_budgets_message_names_the_bad_one(clip: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", clip, "--budgets", "0,8"]) == 2
    err = capsys.readouterr().err
    assert "at least one positive" not in err
    assert "every budget must be a positive integer" in err and "0 is not" in err


def test_method_note_only_after_a_successful_run(clip: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", "/nonexistent/clip.mp4"]) == 1
    err = capsys.readouterr().err
    assert "no --method given" not in err and "VideoNotFoundError" in err
    assert main(["select", clip]) == 0
    assert "no --method given" in capsys.readouterr().err


def test_configured_embedder_hint_says_pass_a_question(
        clip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('embedder = "hf:/models/siglip"\n')
    monkeypatch.setenv("VIDSEL_CONFIG", str(cfg))
    assert main(["select", clip]) == 0
    err = capsys.readouterr().err
    assert "no question (-Q)" in err and "-Q" in err
    assert 'embedder = "SPEC"' not in err and "VIDSEL_EMBEDDER=SPEC" not in err


def test_missing_vidsel_config_file_is_an_error(clip: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("VIDSEL_CONFIG", str(missing))
    assert main(["select", clip, "--method", "uniform"]) == 2
    assert str(missing) in capsys.readouterr().err


# -- 6: a truncated file is warned about once -------------------------------------------------


def _truncated_faststart_mp4(path: Path) -> Path:
    import av  # test data only: an MP4 with its index in front, then cut

    full = path.with_name("full.mp4")
    with av.open(str(full), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(50):
            img = np.full((120, 160, 3), 40, np.uint8)
            img[:, (i * 3) % 140:(i * 3) % 140 + 20] = 220
            img[::7] = rng.integers(0, 255, (img[::7].shape), dtype=np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def test_inspect_warns_once_about_truncation(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = _truncated_faststart_mp4(tmp_path / "cut.mp4")
    assert main(["inspect", str(bad)]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "WARNING" in ln and str(bad) in ln]
    assert len(lines) == 1, err


@pytest.mark.parametrize("argv", [["select", "--method", "codec", "--budget", "4"],
                                  ["compare", "--budgets", "2,4"]])
def test_every_command_warns_once_about_truncation(tmp_path: Path, argv: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """docs/cli.md: a truncated file is warned about once per command (select and compare read
    it in several passes: the index, the bars, the decode pass, each budget)."""
    bad = _truncated_faststart_mp4(tmp_path / "cut.mp4")
    assert main([argv[0], str(bad), *argv[1:]]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines()
             if "WARNING" in ln and str(bad) in ln and ("truncated" in ln or "ends" in ln)]
    assert len(lines) == 1, err


def test_select_says_when_the_video_is_smaller_than_the_budget(
        make_synth, capsys: pytest.CaptureFixture[str]) -> None:
    info = make_synth(scene="counter", num_frames=9, width=160, height=120)
    assert main(["select", info.path, "--method", "codec", "--budget", "16"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "1764 tokens of a 3136-token budget: the video has no more" in head, head
    assert main(["select", info.path, "--method", "codec", "--budget", "2"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.endswith("(392 tokens)"), head
