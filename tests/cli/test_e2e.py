"""Every subcommand and every flag of the command line, end to end on real code: generated
videos, a tiny random local CLIP as the embedder, the real method registry, real files.
Nothing of vidsel is replaced. ``test_every_flag_is_exercised`` keeps the table complete: a new
flag without a case here fails it.

Also the trial items of the CLI: help examples that parse (5), a closed stdout pipe (6), a bare
``vidsel select`` and the default embedder (11), progress bars on a terminal (12) and usage
errors that exit 2 (16)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vidsel.cli import SUBCOMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[2]

PLUGIN = textwrap.dedent('''
    """A plugin method: the first ``budget`` frames."""
    import numpy as np

    import vidsel
    from vidsel.methods import register_method
    from vidsel.results import Selection


    @register_method("first-frames", description="the first frames", overwrite=True)
    def first_frames(path, *, question, budget, geometry):
        with vidsel.VideoReader(path) as r:
            idx = np.arange(min(budget, len(r)))
            return Selection(indices=idx, timestamps_s=r.metadata.timestamps_s[idx],
                             scores=None, method="first-frames", source_fps=r.metadata.fps,
                             path=r.path, num_frames=len(r),
                             tokens_per_frame=geometry.tokens_per_frame)
''')


class Env:
    """Paths a case refers to, as ``{name}`` in its arguments."""

    def __init__(self, tmp: Path, clip: str, good: Path, mixed: Path, emb: Path) -> None:
        self.tmp, self.clip, self.good, self.mixed, self.emb = tmp, clip, good, mixed, emb
        self.questions = tmp / "q.csv"
        self.questions.write_text("path,question\nclip0.mp4,where is the box\n"
                                  "clip0.mp4,what moves\nclip1.mp4,what moves\n")
        # vidsel eval: a generic JSONL benchmark over the same clip, with subtitles
        (tmp / "sub.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\na box appears\n")
        self.bench = tmp / "bench.jsonl"
        self.bench.write_text("".join(json.dumps(
            {"id": f"e{i}", "video": clip, "question": q, "options": ["left", "right"],
             "answer": "A", "subtitles": str(tmp / "sub.srt")}) + "\n"
            for i, q in enumerate(["where does the box go", "what moves", "is it red"])))

    def fmt(self, argv: list[str]) -> list[str]:
        names = {"tmp": str(self.tmp), "clip": self.clip, "good": str(self.good),
                 "mixed": str(self.mixed), "emb": str(self.emb), "q": str(self.questions),
                 "bench": str(self.bench)}
        return [a.format(**names) for a in argv]


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


Check = Callable[[Env, str], None]


def _select_uniform(env: Env, out: str) -> None:
    rec = json.loads(out)
    assert rec["selection"]["method"] == "uniform" and len(rec["selection"]["indices"]) == 3


def _select_codec(env: Env, out: str) -> None:
    rec = json.loads((env.tmp / "s.json").read_text())
    sel = rec["selection"]
    assert sel["kind"] == "patches" and sel["num_tokens"] == 2 * (112 // 28) ** 2
    assert len(sel["positions"]) == sel["num_patches"]  # --per-patch: every patch's row
    assert (env.tmp / "c.png").stat().st_size > 0
    assert sorted(p.suffix for p in (env.tmp / "f").iterdir()) == [".png"] * len(rec["frames"])
    assert out.startswith(str(env.clip))


def _select_mdp3(env: Env, out: str) -> None:
    rec = json.loads((env.tmp / "m.json").read_text())
    sel = rec["selection"]
    assert sel["method"] == "mdp3" and len(sel["indices"]) == 3
    assert sel["params"]["lam"] == 0.2 and rec["question"] == "a red box"
    assert len(sel["candidate_timestamps_s"]) > 0 and (env.tmp / "rel.png").stat().st_size > 0
    assert any((env.tmp / "cache").rglob("*")), "--cache-dir holds the embeddings"


def _quiet(env: Env, out: str) -> None:
    assert env.clip in out  # -q quiets logs and progress, never the result


def _plugin(env: Env, out: str) -> None:
    assert "first-frames selected 2 frames" in out


def _batch_full(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "b.jsonl")
    assert len(recs) == 5 + 1 and all(r["status"] == "ok" for r in recs)  # clip0: 2 questions
    assert {r["question"] for r in recs} == {"where is the box", "what moves", "a default"}
    r0 = recs[0]
    assert r0["method"] == "topk" and r0["parameters"]["options"]["candidate_mode"] == "keyframe"
    files = {p.suffix for p in (env.tmp / "b_assets").rglob("*.*")}
    assert files == {".png"}


def _batch_resume(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "b2.jsonl")
    assert len(recs) == 4 and "already done" in out


def _batch_codec(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "b3.jsonl")
    assert len(recs) == 4 and sum(r["status"] == "error" for r in recs) == 1
    assert all(len(r["selection"]["positions"]) == r["selection"]["num_patches"]
               for r in recs if r["status"] == "ok")  # --per-patch
    assert "[process x1]" in out


def _batch_ray(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "ray.jsonl")
    assert len(recs) == 5 and all(r["status"] == "ok" for r in recs) and "ray (" in out


def _compare_one(env: Env, out: str) -> None:
    data = json.loads((env.tmp / "cmp.json").read_text())
    assert {r["budget_frames"] for r in data["rows"]} == {2, 4}
    assert (env.tmp / "cmp.png").stat().st_size > 0 and "uniform" in out and "codec" in out


def _compare_question(env: Env, out: str) -> None:
    rows = json.loads((env.tmp / "cq.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["uniform", "codec", "codec+mdp3"]
    assert len({r["num_tokens"] for r in rows}) == 1


def _compare_dir(env: Env, out: str) -> None:
    data = json.loads(out)
    assert len(data["videos"]) == 5 and data["failures"] == []
    assert len(list((env.tmp / "plots").glob("*.png"))) == 5


def _inspect_full(env: Env, out: str) -> None:
    info = json.loads((env.tmp / "i.json").read_text())
    assert info["motion"] is None and len(out.splitlines()) > 40  # one line per frame
    assert (env.tmp / "t.png").stat().st_size > 0


def _inspect_json(env: Env, out: str) -> None:
    assert json.loads(out)["motion"]["frame_indices"]


def _demo(env: Env, out: str) -> None:
    summary = json.loads((env.tmp / "demo" / "demo.json").read_text())
    assert {"uniform", "codec", "mdp3"} <= set(summary)
    assert len(summary["mdp3"]["source_frames"]) == 3


def _version(env: Env, out: str) -> None:
    assert out.startswith("vidsel ")


def _help(env: Env, out: str) -> None:
    assert "examples:" in out


#: (id, arguments, exit code, check of the files written and stdout)
def _eval_full(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "e1.jsonl")
    assert len(recs) == 2 * 2 * 2 and all(r["status"] == "ok" for r in recs)
    assert {r["model"] for r in recs} == {'py:h4_eval:answer{"name": "rules"}'}
    assert all(r["subtitles"] == ["a box appears"] for r in recs if r["method"] == "uniform")
    dpp = [r for r in recs if r["method"] == "dpp"]
    assert all(r["embedder"] == str(env.emb) for r in dpp)
    assert (env.tmp / "e.png").read_bytes()[:4] == b"\x89PNG"
    assert "uniform" in out and "dpp" in out


def _eval_resume(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "e1.jsonl")  # the third item joins; the first two stay
    assert len(recs) == 3 * 2 * 2 and len({r["key"] for r in recs}) == 12
    assert "uniform" in out and "dpp" in out  # -q quiets logs, not the result


def _eval_ray(env: Env, out: str) -> None:
    recs = jsonl(env.tmp / "e3.jsonl")
    assert len(recs) == 3 and all(r["status"] == "ok" for r in recs)
    assert "uniform" in out  # --verbose then --quiet: the default output, the table


def _eval_report(env: Env, out: str) -> None:
    assert "R1@" not in out and "accuracy" in out  # mcq items: accuracy, every metric
    assert json.loads((env.tmp / "r.json").read_text())["rows"]
    assert (env.tmp / "r.csv").read_text().startswith("dataset,")
    assert (env.tmp / "r.png").read_bytes()[:4] == b"\x89PNG"


def _eval_merge(env: Env, out: str) -> None:
    assert len(jsonl(env.tmp / "m.jsonl")) == 12  # the overwrite: e1 alone


EVAL_RULES = textwrap.dedent('''
    """A rule-based model for the eval cases: always option A."""


    def answer(request):
        return "A"
''')

CASES: list[tuple[str, list[str], int, Check | None]] = [
    ("version", ["--version"], 0, _version),
    ("help", ["-h"], 0, _help),
    ("help-long", ["--help"], 0, _help),
    ("select-uniform", ["select", "{clip}", "--method", "uniform", "--budget", "3", "--json",
                        "-v", "--verbose"], 0, _select_uniform),
    ("select-codec", ["select", "{clip}", "-m", "codec", "-k", "2", "--frame-size", "112",
                      "--patch-size", "14", "--merge", "2", "--anchors", "uniform",
                      "--per-patch", "--param", "camera=median", "--contact-sheet",
                      "{tmp}/c.png", "--save-frames", "{tmp}/f", "--frame-format", "png",
                      "--output", "{tmp}/s.json"], 0, _select_codec),
    ("select-mdp3", ["select", "{clip}", "--question", "a red box", "--embedder", "{emb}",
                     "--method", "mdp3", "--k", "3", "--candidates", "16",
                     "--candidate-mode", "exact", "--embed-size", "32", "--cache-dir",
                     "{tmp}/cache", "--backend", "pyav", "--device", "cpu", "-p", "lam=0.2",
                     "--plot", "{tmp}/rel.png", "-o", "{tmp}/m.json"], 0, _select_mdp3),
    ("select-quiet", ["select", "{clip}", "-Q", "the box", "-e", "{emb}", "-m", "topk",
                      "--budget", "2", "--candidates", "8", "-q"], 0, _quiet),
    ("select-quiet-long", ["select", "{clip}", "-m", "uniform", "--quiet"], 0, _quiet),
    ("select-plugin", ["select", "{clip}", "--plugin", "h4_plugin", "--method", "first-frames",
                       "--budget", "2"], 0, _plugin),
    ("batch-full", ["batch", "{good}", "--out", "{tmp}/b.jsonl", "--questions", "{q}",
                    "--question", "a default", "-Q", "a default", "-e", "{emb}",
                    "--method", "topk", "--budget", "2", "--candidates", "8",
                    "--candidate-mode", "keyframe", "--embed-size", "32", "--device", "cpu",
                    "--cache-dir", "{tmp}/c2",
                    "--executor", "serial", "--no-fsync", "--no-progress", "--save-frames",
                    "--contact-sheets", "--frame-format", "png", "--no-probe", "--quiet"], 0,
     _batch_full),
    ("batch-codec", ["batch", "{mixed}", "-o", "{tmp}/b3.jsonl", "-m", "codec", "-k", "2",
                     "--frame-size", "56", "--patch-size", "14", "--merge", "2", "--anchors",
                     "adaptive", "--per-patch", "--param", "camera=median", "--workers", "1",
                     "--progress", "--overwrite", "-v"], 1, _batch_codec),
    ("batch-resume", ["batch", "{mixed}", "--out", "{tmp}/b2.jsonl", "-m", "uniform", "--k",
                      "2", "-j", "1", "--resume", "--retry-failed", "--plugin", "h4_plugin",
                      "--backend", "pyav", "-q"], 1, _batch_resume),
    ("batch-embedder", ["batch", "{clip}", "--out", "{tmp}/b4.jsonl", "-m", "dpp", "-Q", "a box",
                        "--embedder", "{emb}", "--candidates", "8", "-p", "lam=0.5",
                        "--executor", "serial"], 0, None),
    ("batch-ray", ["batch", "{good}", "--out", "{tmp}/ray.jsonl", "-m", "uniform", "--budget",
                   "2", "--executor", "ray", "--ray-address", "local", "--gpus-per-task", "0",
                   "--workers", "1", "--verbose"], 0, _batch_ray),
    ("compare-one", ["compare", "{clip}", "--budgets", "2,4", "--frame-size", "112",
                     "--patch-size", "14", "--merge", "2", "--eval-frames", "8", "--param",
                     "camera=median", "--json", "{tmp}/cmp.json", "--plot", "{tmp}/cmp.png", "-v", "--verbose"], 0,
     _compare_one),
    ("compare-question", ["compare", "{clip}", "--budgets", "2", "--frame-size", "56",
                          "--eval-frames", "4", "--question", "a red box", "-e", "{emb}",
                          "--json", "{tmp}/cq.json"], 0, _compare_question),
    ("compare-question-short", ["compare", "{clip}", "--budgets", "2", "--frame-size", "56",
                                "--eval-frames", "4", "-Q", "a box", "--embedder", "{emb}",
                                "-p", "anchors=dpp", "-p", "relevance_share=0.25"], 0, None),
    ("compare-dir", ["compare", "{good}", "--budgets", "2", "--frame-size", "56",
                     "--eval-frames", "4", "-p", "signal=pixel_diff", "--json", "--plot",
                     "{tmp}/plots", "-q", "--quiet"], 0, _compare_dir),
    ("inspect-full", ["inspect", "{clip}", "--frames", "--no-motion", "--json", "{tmp}/i.json",
                      "--plot", "{tmp}/t.png", "-v", "--verbose"], 0, _inspect_full),
    ("inspect-json", ["inspect", "{clip}", "--json", "-q", "--quiet"], 0, _inspect_json),
    ("demo", ["demo", "--out", "{tmp}/demo", "--video", "{clip}", "--budget", "3", "--embedder",
              "{emb}", "--question", "a box", "--device", "cpu", "-q"], 0, _demo),
    ("demo-aliases", ["demo", "-o", "{tmp}/demo2", "--video", "{clip}", "--k", "2", "-e",
                      "{emb}", "-Q", "a box", "--quiet", "--verbose"], 0, None),
    ("demo-k", ["demo", "-o", "{tmp}/demo3", "--video", "{clip}", "-k", "2", "-q", "-v"], 0,
     None),
    ("eval-full", ["eval", "--dataset", "jsonl", "--annotations", "{bench}", "--videos",
                   "{good}", "--limit", "2", "--subtitles", "--model", "py:h4_eval:answer",
                   "--model-option", "name=rules", "--methods", "uniform,dpp", "--budgets",
                   "2,3", "-e", "{emb}", "--param", "candidates=8", "--device", "cpu",
                   "--max-new-tokens", "8", "--out", "{tmp}/e1.jsonl", "--shard", "0/1",
                   "--selection-cache", "{tmp}/selcache", "--executor", "process",
                   "--workers", "1", "--no-fsync", "--no-progress", "--plot", "{tmp}/e.png",
                   "-v"], 0, _eval_full),
    ("eval-resume", ["eval", "--dataset", "jsonl", "--annotations", "{bench}", "--model",
                     "py:h4_eval:answer", "--model-option", "name=rules", "--subtitles",
                     "--methods", "uniform,dpp", "--budgets", "2,3", "--max-new-tokens", "8",
                     "--embedder", "{emb}", "-p", "candidates=8", "-o", "{tmp}/e1.jsonl",
                     "--resume", "--retry-failed", "--no-selection-cache", "-j", "1",
                     "--progress", "-q"], 0, _eval_resume),
    ("eval-ray", ["eval", "--dataset", "jsonl", "--annotations", "{bench}", "--model",
                  "py:h4_eval:answer", "--budgets", "2", "--out", "{tmp}/e3.jsonl",
                  "--overwrite", "--executor", "ray", "--ray-address", "local",
                  "--gpus-per-task", "0", "--replicas", "cpu", "--verbose", "--quiet"], 0,
     _eval_ray),
    ("eval-report", ["eval", "report", "{tmp}/e1.jsonl", "--metric", "all", "--failures",
                     "wrong", "--plot",
                     "{tmp}/r.png", "--json", "{tmp}/r.json", "--csv", "{tmp}/r.csv", "-v",
                     "--verbose", "-q", "--quiet"], 0, _eval_report),
    ("eval-merge", ["eval", "merge", "{tmp}/e1.jsonl", "{tmp}/e3.jsonl", "--out",
                    "{tmp}/m.jsonl", "-v", "--verbose"], 0, None),
    ("eval-merge-again", ["eval", "merge", "{tmp}/e1.jsonl", "-o", "{tmp}/m.jsonl",
                          "--overwrite", "-q", "--quiet"], 0, _eval_merge),
    ("global-verbosity", ["-v", "--verbose", "inspect", "{clip}", "--no-motion"], 0, None),
    ("global-quiet", ["-q", "--quiet", "inspect", "{clip}", "--no-motion"], 0, _quiet),
]

#: Options a case may leave out, with the reason.
NOT_RUN: dict[str, str] = {}


def _parser_options() -> dict[str, set[str]]:
    """Option strings by command: ``""`` (before the subcommand), ``"eval"``, and nested
    commands as ``"eval report"``."""
    parser = build_parser()
    out = {"": {o for a in parser._actions for o in a.option_strings}}

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    key = f"{prefix} {name}".strip()
                    out[key] = {o for a in sub._actions for o in a.option_strings}
                    walk(sub, key)

    walk(parser, "")
    return out


def _command_of(argv: list[str], options: dict[str, set[str]]) -> tuple[str, int]:
    """(command, index of its first argument) of an argv: ``("eval report", 2)``."""
    at = next((i for i, a in enumerate(argv) if a in options), None)
    if at is None:
        return "", len(argv)
    cmd, i = argv[at], at + 1
    while i < len(argv) and f"{cmd} {argv[i]}" in options:
        cmd, i = f"{cmd} {argv[i]}", i + 1
    return cmd, i


def test_every_flag_is_exercised() -> None:
    """Each subcommand has a case, and each of its option strings (aliases too) is used."""
    options = _parser_options()
    assert {c for c in options if c and " " not in c} == set(SUBCOMMANDS.names())
    used: dict[str, set[str]] = {name: set() for name in options}
    for _, argv, _, _ in CASES:
        cmd, i = _command_of(argv, options)
        first = next((j for j, a in enumerate(argv) if a in options), len(argv))
        used[""] |= {a for a in argv[:first] if a.startswith("-")}  # before the subcommand
        if cmd:
            used[cmd] |= {a for a in argv[i:] if a.startswith("-")}
    missing = {cmd: sorted(opts - used[cmd] - {"-h", "--help"} - set(NOT_RUN))
               for cmd, opts in options.items()}
    missing = {cmd: opts for cmd, opts in missing.items() if opts}
    assert not missing, f"flags without an end-to-end case: {missing}"
    assert all(used[cmd] for cmd in options if cmd)


def test_every_flag_docs_cli_names_exists() -> None:
    """docs/cli.md stays true: each ``--flag`` it names is a flag of the command line (the
    benchmark script's own flags aside)."""
    options = set().union(*_parser_options().values())
    text = re.sub(r"`python benchmarks/[^`]*`", "", (REPO / "docs" / "cli.md").read_text())
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert len(named) > 30
    assert named <= options, f"docs/cli.md names flags vidsel lacks: {sorted(named - options)}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, clip: str, good_dir: Path, mixed_dir: Path,
        tiny_clip_dir: Path) -> Env:
    tmp = tmp_path_factory.mktemp("e2e")
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / "h4_plugin.py").write_text(PLUGIN)
    (tmp / "plugins" / "h4_eval.py").write_text(EVAL_RULES)
    return Env(tmp, clip, good_dir, mixed_dir, tiny_clip_dir)


@pytest.mark.parametrize(("argv", "code", "check"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_case(argv: list[str], code: int, check: Check | None, env: Env,
              capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if "ray" in argv:
        pytest.importorskip("ray")
    monkeypatch.syspath_prepend(str(env.tmp / "plugins"))  # --plugin h4_plugin
    # no user defaults: the default config file is absent (a VIDSEL_CONFIG must exist)
    monkeypatch.delenv("VIDSEL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env.tmp / "xdg"))
    monkeypatch.delenv("VIDSEL_EMBEDDER", raising=False)
    if "batch" in argv and "--resume" in argv:  # something to resume
        prep = env.fmt(["batch", "{mixed}", "--out", "{tmp}/b2.jsonl", "-m", "uniform",
                        "--budget", "2", "--executor", "serial", "-qq"])
        assert main(prep) == 1
    rc = main(env.fmt(argv))
    out, err = capsys.readouterr()
    assert rc == code, err
    if check is not None:
        check(env, out)


# -- trial 5: the examples of every --help parse ----------------------------------------------


def _help_examples() -> list[str]:
    parser = build_parser()
    texts = [parser.epilog or ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts += [sub.epilog or "" for sub in action.choices.values()]
    commands = []
    for text in texts:
        logical = text.replace("\\\n", " ")
        for line in logical.splitlines():
            line = line.strip()
            if line.startswith("vidsel "):
                commands.append(line.split(" #")[0].split(" | ")[0].strip())
    return commands


def test_every_help_example_parses(capsys: pytest.CaptureFixture[str]) -> None:
    examples = _help_examples()
    assert len(examples) >= 15
    for command in examples:
        argv = shlex.split(command)[1:]
        if "--plugin" in argv:
            continue  # its method exists only with the plugin: see the next test
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"help example does not parse ({e.code}): {command}\n"
                        f"{capsys.readouterr().err}")


def test_the_plugin_help_example_runs(clip: str, tmp_path: Path) -> None:
    (command,) = [c for c in _help_examples() if "--plugin" in c]
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "methods.py").write_text(PLUGIN.replace('"first-frames"', '"mine"'))
    argv = [clip if a.endswith(".mp4") else a for a in shlex.split(command)[1:]]
    proc = _run(*argv, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "mine selected 8 frames" in proc.stdout


# -- trial 6: a reader that closes the pipe ----------------------------------------------------


def test_closed_stdout_pipe_exits_quietly(clip: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vidsel", "inspect", clip, "--frames",
                             "--no-motion"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that has read enough: every write gets EPIPE
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=120)
    assert err == "", err
    assert rc == 141


# -- trial 11: a bare `vidsel select`, and a default embedder set once --------------------------


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "vidsel", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=300)


def test_bare_select_runs_uniform_and_says_how_to_rank(clip: str, tmp_path: Path) -> None:
    clean = {"VIDSEL_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path), "VIDSEL_EMBEDDER": ""}
    proc = _run("select", clip, env=clean)
    assert proc.returncode == 0, proc.stderr
    assert "uniform selected 8 frames" in proc.stdout
    assert "--method uniform" in proc.stderr and "VIDSEL_EMBEDDER" in proc.stderr
    assert str(tmp_path / "vidsel" / "config.toml") in proc.stderr and "-Q" in proc.stderr
    proc = _run("select", clip, "-Q", "where is the box?", "--json", env=clean)
    assert proc.returncode == 0 and json.loads(proc.stdout)["selection"]["method"] == "uniform"
    proc = _run("select", clip, "-q", env=clean)  # -q: no note
    assert proc.returncode == 0 and proc.stderr == ""


@pytest.mark.parametrize("where", ["env", "file"])
def test_a_default_embedder_set_once(where: str, clip: str, tiny_clip_dir: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VIDSEL_CONFIG", raising=False)
    monkeypatch.delenv("VIDSEL_EMBEDDER", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if where == "env":
        monkeypatch.setenv("VIDSEL_EMBEDDER", str(tiny_clip_dir))
    else:
        (tmp_path / "vidsel").mkdir()
        (tmp_path / "vidsel" / "config.toml").write_text(
            f"# vidsel defaults\nembedder = {json.dumps(str(tiny_clip_dir))}\ndevice = \"cpu\"\n")
    assert main(["select", clip, "-Q", "a red box", "--candidates", "8", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["selection"]["method"] == "mdp3" and rec["selection"]["candidate_scores"]
    assert main(["select", clip, "-m", "topk", "-Q", "a box", "--candidates", "8"]) == 0
    assert "topk selected 8 frames" in capsys.readouterr().out
    assert main(["select", clip, "-m", "codec", "--frame-size", "56"]) == 0  # takes none
    assert main(["select", clip]) == 0  # no question: uniform, and it says so
    out, err = capsys.readouterr()
    assert "uniform selected 8 frames" in out and "no question" in err
    out_file = tmp_path / "b.jsonl"
    assert main(["batch", clip, "--out", str(out_file), "-Q", "a box", "--candidates", "8",
                 "--executor", "serial"]) == 0
    (rec,) = jsonl(out_file)
    assert rec["method"] == "mdp3"
    assert rec["parameters"]["options"]["embedder"] == str(tiny_clip_dir)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--video", clip, "--budget", "2",
                 "-q"]) == 0
    assert "mdp3" in json.loads((tmp_path / "demo" / "demo.json").read_text())


def test_a_broken_config_file_is_a_usage_error(clip: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("embedder = [unclosed\n")
    monkeypatch.setenv("VIDSEL_CONFIG", str(bad))
    assert main(["select", clip]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "TOML" in err
    bad.write_text("embedder = 3\n")
    assert main(["select", clip]) == 2
    assert "must be a non-empty string" in capsys.readouterr().err


# -- trial 12: progress bars on a terminal, none when piped or with -q ---------------------------


def _stderr_on_a_terminal(*args: str) -> str:
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    # a terminal of 24 x 100 (a bare pseudo-terminal has 0 columns: tqdm would draw nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VIDSEL_EMBEDDER": "", "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "vidsel", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bars_on_a_terminal_only(clip: str, good_dir: Path, tiny_clip_dir: Path,
                                          tmp_path: Path) -> None:
    bar = re.compile(r"\d+%\|")  # tqdm: "compare:  50%|#####     | 2/4 [...]"
    args = ("compare", clip, "--budgets", "2,4", "--frame-size", "56", "--eval-frames", "4")
    assert bar.search(_stderr_on_a_terminal(*args))
    assert not bar.search(_stderr_on_a_terminal(*args, "-q"))
    piped = _run(*args)
    assert piped.returncode == 0 and not bar.search(piped.stderr)
    # the silent minute of the trial: candidates decoded and embedded for mdp3
    text = _stderr_on_a_terminal("select", clip, "-m", "mdp3", "-Q", "a red box", "--embedder",
                                 str(tiny_clip_dir), "--candidates", "16")
    assert "embedding frames" in text and bar.search(text)
    batch = ("batch", str(good_dir), "-m", "uniform", "--budget", "2", "--executor", "serial")
    assert bar.search(_stderr_on_a_terminal(*batch, "--out", str(tmp_path / "a.jsonl")))
    assert not bar.search(_stderr_on_a_terminal(*batch, "--out", str(tmp_path / "b.jsonl"),
                                                "-q"))


# -- trial 16: usage errors exit 2, before any video is read -------------------------------------


@pytest.mark.parametrize("argv", [
    ["select", "{clip}", "-m", "uniform", "--merge", "0"],
    ["select", "{clip}", "-m", "uniform", "--frame-size", "10"],
    ["select", "{clip}", "-m", "uniform", "--patch-size", "0"],
    ["select", "{clip}", "-m", "uniform", "--budget", "0"],
    ["select", "{clip}", "-m", "uniform", "--candidates", "-3"],
    ["select", "{clip}", "-m", "uniform", "--candidates", "fps:x"],
    ["select", "{clip}", "-m", "uniform", "--embed-size", "0"],
    ["select", "{clip}", "-m", "mdp3", "-Q", "x"],
    ["batch", "{clip}", "--out", "{tmp}/u.jsonl", "-m", "uniform", "--merge", "0"],
    ["batch", "{clip}", "--out", "{tmp}/u.jsonl", "-m", "uniform", "--workers", "0"],
    ["compare", "{clip}", "--merge", "0"],
    ["compare", "{clip}", "--frame-size", "10"],
    ["compare", "{clip}", "--eval-frames", "0"],
    ["compare", "{clip}", "--budgets", "0"],
    ["compare", "{clip}", "-p", "nonsense=1"],
    ["demo", "--budget", "0", "--out", "{tmp}/d"],
    ["inspect"],
], ids=lambda a: " ".join(a[:1] + a[2:]))
def test_usage_errors_exit_2(argv: list[str], env: Env, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("VIDSEL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env.tmp / "xdg"))
    monkeypatch.delenv("VIDSEL_EMBEDDER", raising=False)
    assert main(env.fmt(argv)) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert not (env.tmp / "u.jsonl").exists() and not (env.tmp / "d").exists()


def test_config_precedence_and_paths(tmp_path: Path) -> None:
    from vidsel.config import config_path, load_config

    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "vidsel" / "config.toml"
    assert config_path({"VIDSEL_CONFIG": str(tmp_path / "x.toml")}) == tmp_path / "x.toml"
    assert str(config_path({})).endswith(os.path.join(".config", "vidsel", "config.toml"))
    assert load_config({"XDG_CONFIG_HOME": str(tmp_path)}).embedder is None  # no file: no error
    f = tmp_path / "vidsel" / "config.toml"
    f.parent.mkdir()
    f.write_text('embedder = "hf:/file"\ndevice = "cuda"\ncolour = "blue"\n')
    cfg = load_config({"XDG_CONFIG_HOME": str(tmp_path)})
    assert (cfg.embedder, cfg.device) == ("hf:/file", "cuda")
    assert cfg.sources["embedder"] == str(f)
    cfg = load_config({"XDG_CONFIG_HOME": str(tmp_path), "VIDSEL_EMBEDDER": "hf:/env"})
    assert (cfg.embedder, cfg.device) == ("hf:/env", "cuda")  # the environment wins
    assert cfg.describe("embedder") == "hf:/env (from VIDSEL_EMBEDDER)"
