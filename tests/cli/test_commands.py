"""select / compare / inspect / demo through ``main([...])`` and through a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vidsel.cli import main

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "vidsel", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)


def test_help_is_fast_and_lists_every_command() -> None:
    t0 = time.perf_counter()
    proc = run_cli("--help")
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    for cmd in ("demo", "select", "batch", "compare", "eval", "inspect"):
        assert cmd in proc.stdout
    assert "examples:" in proc.stdout
    assert elapsed < 10  # no torch / transformers import (about 0.4 s here)
    heavy = ("torch", "transformers", "matplotlib", "ray", "tqdm", "open_clip")
    out = subprocess.run([sys.executable, "-c", "import sys; from vidsel.cli import "
                          "build_parser; build_parser(); "
                          f"print([m for m in {heavy!r} if m in sys.modules])"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stderr


def test_commands_and_methods_come_from_registries(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    from vidsel.cli import SUBCOMMANDS
    from vidsel.errors import InvalidArgumentError
    from vidsel.methods import available_methods

    assert SUBCOMMANDS.names() == ("batch", "compare", "demo", "eval", "inspect", "select")
    with pytest.raises(InvalidArgumentError, match="subcommand='nope' is not registered"):
        SUBCOMMANDS.get("nope")
    assert main(["select", "--help"]) == 0
    text = capsys.readouterr().out
    for name in available_methods():
        assert name in text
    assert main(["select", "x.mp4", "--method", "magic"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'magic'" in err and "codec" in err and "uniform" in err


@pytest.mark.parametrize("cmd", ["demo", "select", "batch", "compare", "eval", "inspect"])
def test_subcommand_help(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"vidsel {cmd}" in out


def test_usage_errors_exit_2(clip: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["select"]) == 2  # missing VIDEO (argparse)
    assert main(["select", clip, "--method", "magic"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    # a model method without an embedder: caught before touching the video
    assert main(["select", clip, "--method", "mdp3", "-Q", "a box"]) == 2
    assert "needs --embedder" in capsys.readouterr().err
    assert main(["select", clip, "--method", "uniform", "--param", "novalue"]) == 2
    assert main(["select", clip, "--method", "topk", "--embedder", "hf:/nowhere"]) == 2
    assert "needs a question" in capsys.readouterr().err
    assert main(["--version"]) == 0


def test_options_a_method_does_not_take_are_usage_errors(
        clip: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", clip, "--method", "uniform", "--anchors", "uniform"]) == 2
    assert "--anchors is not an option of --method uniform" in capsys.readouterr().err
    assert main(["select", clip, "--method", "codec", "--candidate-mode", "exact"]) == 2
    assert "--candidate-mode is not an option of --method codec" in capsys.readouterr().err
    # codec takes --cache-dir for its question (query-aware), not without one
    assert main(["select", clip, "--method", "codec", "--cache-dir", "/tmp/x"]) == 2
    assert "cache_dir: only used with a question" in capsys.readouterr().err
    assert main(["select", clip, "--method", "codec", "--param", "lam=0.2"]) == 2
    assert "does not take ['lam']" in capsys.readouterr().err
    assert main(["select", clip, "--method", "codec", "--frame-size", "100"]) == 2
    assert "frame_size" in capsys.readouterr().err


def test_select_uniform_json_schema(clip: str, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    out = tmp_path / "sel.json"
    assert main(["select", clip, "--method", "uniform", "--budget", "5", "--json", "-o",
                 str(out)]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec == json.loads(out.read_text())
    assert rec["path"] == clip
    sel = rec["selection"]
    assert sel["kind"] == "frames" and sel["method"] == "uniform"
    assert sel["source_frames"] == sel["indices"] == [0, 10, 20, 29, 39]
    assert len(sel["source_timestamps_s"]) == 5 and sel["scores"] is None
    assert sel["num_tokens"] == 5 * 196  # the default geometry: 392 px, 14 px patches, 2x2
    assert sel["source_fps"] == pytest.approx(30.0) and sel["num_frames"] == 40
    assert rec["metadata"]["num_frames"] == 40 and rec["metadata"]["codec"] == "h264"


def test_select_text_table_and_assets(clip: str, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    assert main(["select", clip, "--method", "uniform", "--budget", "4", "--save-frames",
                 str(tmp_path / "frames"), "--frame-format", "png", "--contact-sheet",
                 str(sheet)]) == 0
    text = capsys.readouterr().out
    assert "uniform selected 4 frames (784 tokens)" in text and "time_s" in text
    frames = sorted((tmp_path / "frames").iterdir())
    assert len(frames) == 4 and all(p.suffix == ".png" for p in frames)
    from PIL import Image

    assert Image.open(frames[0]).size == (160, 120)  # decoded at native size
    assert Image.open(sheet).size[0] > 100


def test_select_codec_reports_source_frames_and_tokens(
        clip: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sheet = tmp_path / "codec.png"
    assert main(["select", clip, "--method", "codec", "--budget", "2", "--frame-size", "112",
                 "--json", "--contact-sheet", str(sheet), "--per-patch", "--save-frames",
                 str(tmp_path / "canvases")]) == 0
    sel = json.loads(capsys.readouterr().out)["selection"]
    assert sel["kind"] == "patches" and sel["method"] == "codec"
    assert sel["source_frames"] == sorted(set(sel["source_frames"]))
    assert len(sel["source_frames"]) > 2
    assert len(sel["source_timestamps_s"]) == len(sel["source_frames"])
    assert sel["num_tokens"] == 2 * 16  # 112 px frames: 4 x 4 tokens each
    assert len(sel["positions"]) == sel["num_patches"]  # --per-patch: every row
    assert sheet.stat().st_size > 0
    assert len(list((tmp_path / "canvases").iterdir())) >= 1
    assert main(["select", clip, "--method", "codec", "--budget", "2", "--frame-size", "112"]) == 0
    text = capsys.readouterr().out
    assert "codec selected patches of" in text and "(32 tokens)" in text


def _shape(sel: dict[str, object]) -> dict[str, type]:
    """What every selection record shares, whatever the method."""
    keys = ("kind", "method", "source_frames", "source_timestamps_s", "num_tokens")
    return {k: type(sel[k]) for k in keys}


def test_select_uniform_and_codec_records_have_the_same_shape(
        clip: str, capsys: pytest.CaptureFixture[str]) -> None:
    records = {}
    for method in ("uniform", "codec"):
        assert main(["select", clip, "--method", method, "--budget", "3", "--frame-size", "112",
                     "--json"]) == 0
        records[method] = json.loads(capsys.readouterr().out)
    uni, cod = records["uniform"]["selection"], records["codec"]["selection"]
    assert set(records["uniform"]) == set(records["codec"])
    assert _shape(uni) == _shape(cod)
    assert (uni["kind"], cod["kind"]) == ("frames", "patches")
    assert uni["num_tokens"] == cod["num_tokens"] == 3 * 16  # equal budgets, equal tokens
    for sel in (uni, cod):
        assert len(sel["source_frames"]) == len(sel["source_timestamps_s"])
        assert all(isinstance(i, int) for i in sel["source_frames"])


def test_select_bad_input_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["select", str(tmp_path / "nope.mp4"), "--method", "uniform"]) == 1
    err = capsys.readouterr().err
    assert "VideoNotFoundError" in err and "Traceback" not in err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 300)
    assert main(["select", str(bad), "--method", "uniform"]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["select", str(bad), "--method", "uniform", "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.fixture
def unloadable_embedder() -> Any:
    """The embedder spec ``toyslow:model``, whose loader records each call and fails: a
    command that loads it before it checks its cheap arguments fails the test."""
    from vidsel.embed import register_embedder
    from vidsel.embed._registry import EMBEDDERS

    loads: list[str] = []

    def factory(target: str, **kw: Any) -> Any:
        loads.append(target)
        raise AssertionError("the embedder was loaded before the cheap checks")

    register_embedder("toyslow", factory, overwrite=True)
    yield loads
    EMBEDDERS.unregister("toyslow")


def test_select_checks_the_video_before_loading_the_embedder(
        tmp_path: Path, unloadable_embedder: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """A missing or broken video is reported at once, not after the embedder (seconds of model
    loading) is ready."""
    for video in (tmp_path / "nope.mp4", tmp_path / "bad.mp4"):
        if video.name == "bad.mp4":
            video.write_bytes(b"\x00" * 300)
        assert main(["select", str(video), "-Q", "a red box", "--method", "mdp3",
                     "--embedder", "toyslow:model"]) == 1
        err = capsys.readouterr().err
        assert ("VideoNotFoundError" in err or "NotAVideoError" in err), err
    assert unloadable_embedder == []


@pytest.mark.parametrize("param", ["camera=bogus", "signal=x", "pixels=y", "interpolation=z",
                                   "relevance_share=7"])
def test_select_refuses_bad_codec_params_before_loading_the_embedder(
        clip: str, param: str, unloadable_embedder: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", clip, "-Q", "a red box", "--method", "codec+mdp3",
                 "--embedder", "toyslow:model", "--param", param]) == 2
    err = capsys.readouterr().err
    assert param.split("=")[0] in err and "Traceback" not in err, err
    assert unloadable_embedder == []


def test_select_text_relevance_with_local_embedder(clip: str, tiny_clip_dir: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    plot = tmp_path / "rel.png"
    assert main(["select", clip, "-Q", "where is the yellow box", "--method", "mdp3", "--k",
                 "4", "--embedder", str(tiny_clip_dir), "--candidates", "16", "--param",
                 "segment_size=8", "--json", "--plot", str(plot)]) == 0
    rec = json.loads(capsys.readouterr().out)
    sel = rec["selection"]
    assert len(sel["indices"]) == 4 and len(sel["scores"]) == 4
    assert sel["params"]["segment_size"] == 8 and sel["question"] == "where is the yellow box"
    assert len(sel["candidate_scores"]) == 16
    assert plot.stat().st_size > 0


def test_select_missing_model_is_a_clear_error(clip: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", clip, "-Q", "x", "--embedder", f"hf:{tmp_path / 'no-model'}",
                 "--method", "topk"]) == 1
    err = capsys.readouterr().err
    assert "ModelNotAvailableError" in err and "Traceback" not in err


def test_inspect_text_json_plot(clip: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", clip, "--frames", "--plot", str(tmp_path / "t.png")]) == 0
    text = capsys.readouterr().out
    for word in ("GOPs", "types", "bit cost", "keyframes", "motion", "40 (header"):
        assert word in text
    assert (tmp_path / "t.png").stat().st_size > 0
    assert main(["inspect", clip, "--json", "--no-motion"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["num_frames"] == 40 and info["gops"]["count"] == 2
    assert len(info["packets"]["size"]) == 40 and info["motion"] is None
    assert sum(v["frames"] for v in info["types"].values()) == 40


def test_compare_table_json_plot(clip: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp.json"
    assert main(["compare", clip, "--budgets", "2,4", "--frame-size", "112", "--json",
                 str(out), "--plot", str(tmp_path / "cmp.png")]) == 0
    text = capsys.readouterr().out
    assert "| 2 | uniform |" in text and "| 4 | codec |" in text
    data = json.loads(out.read_text())
    assert {(r["method"], r["budget_frames"]) for r in data["rows"]} == {
        ("uniform", 2), ("codec", 2), ("uniform", 4), ("codec", 4)}
    assert (tmp_path / "cmp.png").stat().st_size > 0
    assert main(["compare", clip, "--budgets", "x"]) == 2


def test_compare_question_row(clip: str, tiny_siglip_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q.json"
    assert main(["compare", clip, "--budgets", "4", "--frame-size", "112", "--eval-frames",
                 "10", "-Q", "where is the box", "--embedder", f"hf:{tiny_siglip_dir}", "-p",
                 "relevance_share=0.25", "--json", str(out)]) == 0
    assert "| 4 | codec+mdp3 |" in capsys.readouterr().out
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"uniform", "codec", "codec+mdp3"}
    assert rows["codec+mdp3"]["num_tokens"] == rows["codec"]["num_tokens"]
    assert main(["compare", clip, "-Q", "where is the box"]) == 2  # no --embedder


def test_compare_folder_reports_failures(mixed_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compare", str(mixed_dir), "--budgets", "2", "--frame-size", "56", "--json",
               str(tmp_path / "all.json"), "--eval-frames", "8"])
    assert rc == 1
    data = json.loads((tmp_path / "all.json").read_text())
    # empty.mp4, garbage.mp4: not videos by content, skipped
    assert len(data["videos"]) == 3 and len(data["failures"]) == 1
    assert {Path(f["path"]).name for f in data["failures"]} == {"corrupt.mp4"}
    assert "mean over 3 videos" in capsys.readouterr().out


def test_demo_subprocess(tmp_path: Path) -> None:
    proc = run_cli("demo", "--out", str(tmp_path / "demo"), "--budget", "4")
    assert proc.returncode == 0, proc.stderr
    assert "no embedder given" in proc.stdout and "--embedder" in proc.stdout
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert len(summary["uniform"]["source_frames"]) == 4
    assert summary["uniform"]["num_tokens"] == summary["codec"]["num_tokens"] == 4 * 196
    assert summary["codec"]["kind"] == "patches"
    for name in ("sample.mp4", "uniform_sheet.png", "codec_sheet.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    again = run_cli("demo", "--out", str(tmp_path / "demo"), "--budget", "4", "-q")
    assert again.returncode == 0 and again.stdout == ""


def test_unknown_selector_param_is_a_usage_error(clip: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", clip, "--method", "uniform", "--param", "segment_size=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0  # one line, no traceback
    assert err.startswith("vidsel select: error: ") and "segment_size" in err
    # batch shares the option parsing: also a usage error, before any video is touched
    assert main(["batch", clip, "--method", "uniform", "--param", "lam=0.2", "--out",
                 "/nonexistent/never-written.jsonl"]) == 2
    assert "lam" in capsys.readouterr().err


def test_verbosity_sets_the_model_package_logger_too() -> None:
    import logging

    from vidsel.cli._common import configure_logging

    try:
        configure_logging(2)  # -vv
        assert logging.getLogger("vidsel").level == logging.DEBUG
        assert logging.getLogger("ovis_model").level == logging.DEBUG
        assert logging.getLogger("ovis_model.checkpoint").isEnabledFor(logging.DEBUG)
        configure_logging(-1)  # -q
        assert logging.getLogger("ovis_model").level == logging.ERROR
    finally:
        configure_logging(0)
    assert logging.getLogger("ovis_model").level == logging.WARNING


def test_uniform_and_codec_run_without_torch(clip: str, tmp_path: Path) -> None:
    """The light core install: no torch / transformers / open_clip on these paths."""
    code = (
        "import sys\n"
        "for name in ('torch', 'transformers', 'open_clip', 'safetensors'):\n"
        "    sys.modules[name] = None  # importing it now raises ImportError\n"
        "from vidsel.cli import main\n"
        f"clip, out = {clip!r}, {str(tmp_path)!r}\n"
        "rcs = [main(['select', clip, '--method', m, '--budget', '2', '--frame-size', '112', '-q',\n"
        "             '--contact-sheet', f'{out}/{m}.png', '--device', 'auto'])\n"
        "       for m in ('uniform', 'codec')]\n"
        "rcs.append(main(['batch', clip, '--out', f'{out}/r.jsonl', '--method', 'codec',\n"
        "                 '--budget', '2', '--frame-size', '112', '--executor', 'serial', '-qq']))\n"
        "print(rcs)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[0, 0, 0]", proc.stderr


def test_usage_error_is_an_invalid_argument_error(clip: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from vidsel.cli._common import UsageError, parse_int_list
    from vidsel.errors import InvalidArgumentError, VidselError

    assert issubclass(UsageError, InvalidArgumentError) and issubclass(UsageError, VidselError)
    with pytest.raises(InvalidArgumentError, match="--budgets 'x' must be comma-separated"):
        parse_int_list("x")
    assert main(["select", clip, "--method", "uniform", "--budget", "0"]) == 2  # still exit 2
    assert "must be >= 1" in capsys.readouterr().err


def test_device_auto_without_torch_names_the_extra(clip: str, run_without: Any) -> None:
    """A core install: ``--device auto`` with an embedder ends with MissingDependencyError
    naming vidsel[embed], exit code 1, no traceback."""
    proc = run_without(("torch", "transformers", "open_clip", "safetensors"), f"""
        from vidsel.cli import main
        rc = main(['select', {clip!r}, '--method', 'topk', '-Q', 'a box', '--embedder', 'hf:x',
                   '--device', 'auto'])
        print('rc', rc)
        """)
    assert proc.stdout.strip() == "rc 1", proc.stderr
    assert "MissingDependencyError" in proc.stderr and "vidsel[embed]" in proc.stderr
    assert "--device auto" in proc.stderr and "Traceback" not in proc.stderr


def test_optional_imports_go_through_one_helper() -> None:
    """No hand-written ``try: import X / except ImportError: raise MissingDependencyError``
    in the library: vidsel.optional.require is the one place. (Catching the ImportError a
    third-party call raises, e.g. transformers' ``from_pretrained`` naming a missing
    torchvision, is not an optional import and is allowed.)"""
    import ast

    bad = []
    for path in sorted((REPO / "vidsel").rglob("*.py")):
        if path.relative_to(REPO).as_posix() == "vidsel/optional.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Try) or not any(
                    isinstance(n, (ast.Import, ast.ImportFrom))
                    for stmt in node.body for n in ast.walk(stmt)):
                continue
            for handler in node.handlers:
                if (handler.type is not None and "ImportError" in ast.dump(handler.type)
                        and any(isinstance(n, ast.Raise) for n in ast.walk(handler))):
                    bad.append(f"{path.relative_to(REPO)}:{handler.lineno}")
    assert not bad, bad
