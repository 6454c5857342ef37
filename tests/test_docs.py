"""Executable docs: every fenced block of README.md and docs/*.md runs, as a user would run it.

* ``python`` blocks are executed in a workspace folder holding the files the docs name
  (``clip.mp4``, ``talk.mp4``, ``videos/``, ... generated once per session, see the
  ``workspace`` fixture), after the few textual substitutions of ``SUBSTITUTIONS`` (model paths
  -> tiny local models, CUDA -> CPU) and the per-document set-up of ``SETUP`` (the names the
  docs use as placeholders for the user's data). A deprecated vidsel name used by a block is an
  error; ``CHECKS`` verifies what some blocks' comments promise.
* ``bash`` blocks run through ``bash -euo pipefail`` in that workspace, with the real ``vidsel``
  console script first on ``PATH``: every command must exit 0.
* ``toml`` blocks must parse; ``text`` blocks are diagrams, listings and synopses (a synopsis
  ``vidsel SUB [--flag ...]`` is checked against ``vidsel SUB --help``, a signature listing
  against the real signatures and result fields).
* A block that cannot run here carries ``<!-- docs-test: skip (reason) -->`` on the line(s)
  right before its fence; ``test_skipped_blocks_are_listed`` prints them. Unmarked blocks run,
  and a fence without a language fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGS = {"python", "bash", "toml", "text"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[^`\s]*)\s*$")

# Model paths and devices the docs name -> what exists here. Applied in this order (longest
# first), to python and bash blocks alike; every entry must be used by some block.
SUBSTITUTIONS: list[tuple[str, str]] = [
    ("hf:/models/siglip-so400m-patch14-384", "hf:{siglip}"),
    ("hf:/models/siglip2-base-patch16-224", "hf:{siglip}"),
    ("hf:/models/siglip", "hf:{siglip}"),
    ("ovis:/models/Ovis2.5-2B", "ovis:{ovis}"),
    ("ovis:/models/LLaVA-OneVision-2-8B", "ovis:{llava_ov2}"),
    ('"/models/Ovis2.5-2B"', '"{ovis}"'),
    ('"/models/LLaVA-OneVision-2-8B"', '"{llava_ov2}"'),
    ('"/models/onevision-encoder-large"', '"{onevision_encoder}"'),
    ('"Qwen/Qwen3-VL-2B-Instruct"', '"{qwen3_vl}"'),
    ('device="cuda"', 'device="cpu"'),
    ('attn_impl="varlen"', 'attn_impl="sdpa"'),
]

# Names a document uses as placeholders for the user's own data, defined before its blocks.
SETUP: dict[str, str] = {
    "docs/reader.md": (
        "import numpy as np\n"
        "from vidsel import io as _io\n"
        "idx = [0, 40, 119]\n"
        "path = 'clip.mp4'\n"
        "index = _io.packet_index(path)\n"
        "def consume(index, frames):\n"
        "    return sum(1 for _ in frames)\n"
        "frames = [np.full((64, 96, 3), v, np.uint8) for v in range(0, 240, 30)]\n"
        "name, factory = 'docs-backend', (lambda *args, **kwargs: None)\n"
    ),
    "docs/select.md": (
        "import numpy as np\n"
        "_rng = np.random.default_rng(0)\n"
        "frame_embeds = _rng.normal(size=(64, 32)).astype(np.float32)\n"
        "frame_embeds /= np.linalg.norm(frame_embeds, axis=1, keepdims=True)\n"
        "text_embed = frame_embeds[10] + 0.1 * _rng.normal(size=32).astype(np.float32)\n"
        "L = frame_embeds @ frame_embeds.T\n"
    ),
}


def _check_readme(scope: dict) -> None:
    assert scope["frames"].shape == _readme_shape_comment()  # talk.mp4 is 16:9
    assert scope["uni"].num_tokens == scope["cod"].num_tokens == 8 * 196
    assert len(scope["s"].indices) == 8


def _check_architecture(scope: dict) -> None:
    res = scope["res"]
    assert res.num_tokens == 4 * 196 and res.method == "keyframes"


def _check_eval(scope: dict) -> None:
    summary = scope["summary"]
    assert (summary.ok, summary.failed, summary.skipped) == (24, 0, 0)
    assert len(scope["df"]) == len(scope["report"].rows)


# What some blocks' comments promise, checked on the names they leave behind (key: a line of
# the block, so that the check follows the block when the doc moves).
CHECKS = {
    ("README.md", "uni = vidsel.run_method("): _check_readme,
    ("docs/architecture.md", 'res = run_method("keyframes"'): _check_architecture,
    ("docs/eval.md", "print(summary.ok, summary.failed, summary.skipped)"): _check_eval,
}


@dataclass(frozen=True)
class Block:
    doc: str        # path relative to the repository root
    line: int       # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}-{self.lang or 'none'}"


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of one markdown file, with the skip marker written just before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, start = m.group("indent"), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[start + 1:j]]
        skip = None
        k = start - 1
        while k >= 0 and lines[k].strip().startswith("<!--"):
            s = SKIP.search(lines[k])
            if s:
                skip = s.group("reason").strip()
            k -= 1
        blocks.append(Block(doc, start + 1, m.group("lang"), "\n".join(body) + "\n", skip))
        i = j + 1
    return blocks


BLOCKS = [b for doc in DOCS for b in parse_blocks(doc)]
RUNNABLE = [b for b in BLOCKS if b.skip is None and b.lang in ("python", "bash")]


# --- the workspace: the files the docs name, generated once per session ------------------------

@pytest.fixture(scope="session")
def doc_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Videos under the names the docs use; small, so that every example stays fast."""
    from vidsel.synth import make_video

    d = tmp_path_factory.mktemp("doc_media")
    # README: 16:9 (the documented (4, 224, 398, 3)) and >= 301 frames (it asks for frame 300)
    make_video(d / "talk.mp4", num_frames=320, width=320, height=180, gop=60)
    make_video(d / "clip.mp4", scene="moving_box", num_frames=120, fps=8, width=192, height=108,
               gop=24)
    return d


_PLUGIN = '''
from vidsel.methods import register_method, run_method


@register_method("mine", description="docs example: uniform under another name")
def mine(path, *, question, budget, geometry):
    return run_method("uniform", path, budget=budget, geometry=geometry)
'''


@pytest.fixture
def workspace(doc_media: Path, tmp_path: Path) -> Path:
    """A fresh folder with every file the examples name: clip.mp4, talk.mp4, lecture.mp4,
    clip.bin, videos/, data/, q.csv, a Charades-STA benchmark (charades_sta_test.txt,
    Charades_v1_480/) and the plugin module ``mypkg.methods``."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("talk.mp4", "clip.mp4"):
        shutil.copyfile(doc_media / name, ws / name)
    shutil.copyfile(doc_media / "clip.mp4", ws / "lecture.mp4")
    shutil.copyfile(doc_media / "clip.mp4", ws / "clip.bin")
    (ws / "videos").mkdir()
    shutil.copyfile(doc_media / "clip.mp4", ws / "videos" / "a.mp4")
    (ws / "data" / "day1").mkdir(parents=True)
    shutil.copyfile(doc_media / "clip.mp4", ws / "data" / "day1" / "b.mp4")
    (ws / "q.csv").write_text("path,question\nday1/b.mp4,where does the box go\n")
    # docs/eval.md: a Charades-STA-format benchmark over three (generated) videos
    (ws / "Charades_v1_480").mkdir()
    for vid in ("AO8RW", "3MSZA", "Y6R7T"):
        shutil.copyfile(doc_media / "clip.mp4", ws / "Charades_v1_480" / f"{vid}.mp4")
    (ws / "charades_sta_test.txt").write_text(
        "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n"
        "AO8RW 8.1 14.8##person begins sweeping the floor.\n"
        "3MSZA 1.0 5.5##a person opens the door.\n"
        "3MSZA 6.2 11.9##the person turns on the light.\n"
        "Y6R7T 0.5 4.0##a person takes a phone out.\n"
        "Y6R7T 4.5 9.9##person sitting on a chair.\n")
    (ws / "mypkg").mkdir()
    (ws / "mypkg" / "__init__.py").write_text("")
    (ws / "mypkg" / "methods.py").write_text(_PLUGIN)
    return ws


# Libraries of integration recipes that are not vidsel dependencies: their blocks skip where
# the library is absent (CI installs them).
OPTIONAL_LIBS = ("lmms_eval", "qwen_vl_utils")

# Tiny local models built only for the blocks that name them: {placeholder: (marker, fixture)}.
LAZY_MODELS = {"ovis": ("/models/Ovis", "tiny_ovis_dir"),
               "llava_ov2": ("/models/LLaVA-OneVision-2", "tiny_llava_ov2_dir"),
               "onevision_encoder": ("/models/onevision-encoder", "tiny_onevision_encoder_dir"),
               "qwen3_vl": ("Qwen/Qwen3-VL-2B-Instruct", "tiny_qwen3_vl_dir")}


def substitute(code: str, siglip: Path, **models: Path | None) -> str:
    values = {"siglip": siglip, **{k: models.get(k) for k in LAZY_MODELS}}
    for old, new in SUBSTITUTIONS:
        code = code.replace(old, new.format(**values))
    return code


@pytest.fixture(scope="session")
def tiny_qwen3_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random-weight Qwen3-VL (model, processor, tokenizer) for the blocks that load
    ``Qwen/Qwen3-VL-2B-Instruct``."""
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    from tests.eval.conftest import build_tiny_vlm

    return build_tiny_vlm("qwen3_vl", tmp_path_factory.mktemp("docs_qwen3_vl"))


def _env(ws: Path) -> dict[str, str]:
    """A fresh user's shell in ``ws``: no vidsel defaults set, offline, ``mypkg`` importable."""
    bindir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDSEL_")}
    return {**env, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "HOME": str(ws), "XDG_CONFIG_HOME": str(ws / ".config"), "PYTHONPATH": str(ws),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "100"}


def run_python(block: Block, code: str, ws: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Exec one python block in ``ws``; methods and backends it registers are removed after."""
    from vidsel.io import BACKENDS
    from vidsel.methods import METHODS

    monkeypatch.chdir(ws)
    monkeypatch.setenv("HOME", str(ws))
    before = {reg: set(reg.names()) for reg in (METHODS, BACKENDS)}
    scope: dict[str, object] = {"__name__": "docs_example"}
    try:
        with warnings.catch_warnings():
            # a doc must not teach a deprecated vidsel name (the warning points at the caller)
            warnings.filterwarnings("error", category=DeprecationWarning, module="docs_example")
            setup = SETUP.get(block.doc)
            if setup:
                exec(compile(setup, f"{block.doc} (test set-up)", "exec"), scope)
            exec(compile(code, f"{block.id}", "exec"), scope)
    finally:
        for reg, names in before.items():  # what a block registered goes again
            for name in set(reg.names()) - names:
                reg.unregister(name)
    return scope


# --- the tests ---------------------------------------------------------------------------------

def test_every_fence_has_a_known_language() -> None:
    bad = [b.id for b in BLOCKS if b.lang not in LANGS]
    assert not bad, (f"fences without a language the docs test knows ({sorted(LANGS)}); tag "
                     f"code as python / bash and diagrams or listings as text: {bad}")
    assert len(RUNNABLE) >= 10


def test_parser_finds_markers_and_indented_fences(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("text\n\n<!-- other -->\n<!-- docs-test: skip (needs a CUDA GPU) -->\n"
                  "```bash\nnvidia-smi\n```\n\n- item:\n\n  ```python\n  x = 1\n"
                  "  if x:\n      y = 2\n  ```\n\n<!-- docs-test: skip (x) -->\n\n"
                  "```python\nz = 3\n```\n")
    a, b, c = parse_blocks(md)
    assert (a.line, a.lang, a.skip, a.code) == (5, "bash", "needs a CUDA GPU", "nvidia-smi\n")
    assert (b.lang, b.skip, b.code) == ("python", None, "x = 1\nif x:\n    y = 2\n")
    assert c.skip is None  # a marker must sit right before its fence


CODE_LINE = re.compile(r"^(import \w|from [\w.]+ import |>>> |\$ |python3? |vidsel \w+ [^\[]*$)")


def test_text_blocks_hold_no_code() -> None:
    """``text`` is for diagrams and listings: code tagged ``text`` would escape this test."""
    bad = [f"{b.id}: {ln}" for b in BLOCKS if b.lang == "text"
           for ln in b.code.splitlines() if CODE_LINE.match(ln)]
    assert not bad, f"code in text blocks (tag it python / bash, or mark it skip): {bad}"


def test_skipped_blocks_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """The blocks marked ``docs-test: skip`` and why; each reason says what is missing here."""
    skipped = [b for b in BLOCKS if b.skip is not None]
    with capsys.disabled():
        print("\ndocs blocks not run here:")
        for b in skipped:
            print(f"  {b.id}: {b.skip}")
    for b in skipped:
        assert len(b.skip or "") >= 8, f"{b.id}: give a reason, not {b.skip!r}"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_doc_block_runs(block: Block, workspace: Path, tiny_siglip_dir: Path,
                        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    for lib in OPTIONAL_LIBS:  # a recipe for a library the user has not installed
        if re.search(rf"^\s*(from|import) {lib}\b", block.code, flags=re.M):
            pytest.importorskip(lib)
    models = {name: request.getfixturevalue(fixture) if marker in block.code else None
              for name, (marker, fixture) in LAZY_MODELS.items()}
    code = substitute(block.code, tiny_siglip_dir, **models)
    if block.lang == "python":
        scope = run_python(block, code, workspace, monkeypatch)
        for (doc, marker), check in CHECKS.items():
            if block.doc == doc and marker in block.code:
                check(scope)
        return
    env = _env(workspace)
    bindir = str(Path(sys.executable).parent)
    assert shutil.which("vidsel", path=bindir), f"no vidsel console script in {bindir}"
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=workspace, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (f"{block.id} exited {out.returncode}:\n{code}\n"
                                 f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "toml"],
                         ids=[b.id for b in BLOCKS if b.lang == "toml"])
def test_toml_blocks_parse(block: Block) -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads(block.code)
    groups = data.get("project", {}).get("entry-points", {})
    if groups:  # the entry-point group the CLI reads plugins from
        from vidsel.methods import ENTRY_POINT_GROUP

        assert ENTRY_POINT_GROUP in groups


SYNOPSES = [b for b in BLOCKS if b.lang == "text" and re.match(r"vidsel \w+ ", b.code)]


@pytest.mark.parametrize("block", SYNOPSES, ids=[b.id for b in SYNOPSES])
def test_cli_synopsis_flags_exist(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    """A ``vidsel SUB [--flag ...]`` synopsis names only flags ``vidsel SUB --help`` knows."""
    from vidsel.cli import main

    sub = block.code.split()[1]
    rc: object
    try:
        rc = main([sub, "--help"])
    except SystemExit as exc:  # argparse's --help
        rc = exc.code
    assert rc in (0, None)
    helptext = capsys.readouterr().out
    missing = [f for f in re.findall(r"--[\w-]+", block.code) if f not in helptext]
    assert not missing, f"{block.id}: `vidsel {sub} --help` knows no {missing}"


# Text blocks that list signatures, and where their names live: keyword arguments and result
# fields there must be the real ones (a listing cannot run, but it can go stale).
SIGNATURE_MODULES = {"docs/model.md": ("ovis_model", "ovis_model.tasks")}
SIGNATURE_BLOCKS = [b for b in BLOCKS if b.lang == "text" and b.doc in SIGNATURE_MODULES
                    and re.search(r"^\w+\(.*\*,", b.code, flags=re.M)]


@pytest.mark.parametrize("block", SIGNATURE_BLOCKS, ids=[b.id for b in SIGNATURE_BLOCKS])
def test_signature_listing_matches_the_code(block: Block) -> None:
    import dataclasses
    import importlib
    import inspect

    modules = [importlib.import_module(m) for m in SIGNATURE_MODULES[block.doc]]
    problems, seen = [], 0
    for m in re.finditer(r"(\w+)\(([^()]*)\)", block.code):
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]
        obj = next((getattr(mod, name) for mod in modules if hasattr(mod, name)), None)
        if obj is None:
            continue
        seen += 1
        if dataclasses.is_dataclass(obj):
            fields = [f.name for f in dataclasses.fields(obj)]
            if args != fields:
                problems.append(f"{name} has fields {fields}, the doc lists {args}")
            continue
        params = inspect.signature(obj).parameters
        documented = args[args.index("*") + 1:] if "*" in args else []
        for arg in documented:
            key = arg.split("=")[0].lstrip("*")
            if key != "..." and key not in params:
                problems.append(f"{name}() takes no {key!r}")
        positional = args[:args.index("*")] if "*" in args else args
        n_pos = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params.values())
        if len(positional) != n_pos:
            problems.append(f"{name}() takes {n_pos} positional arguments, the doc lists "
                            f"{len(positional)}")
    assert seen, f"{block.id}: no listed name found in {SIGNATURE_MODULES[block.doc]}"
    assert not problems, f"{block.id}: " + "; ".join(problems)


def test_every_check_finds_its_block() -> None:
    lost = [key for key in CHECKS
            if not any(b.doc == key[0] and key[1] in b.code for b in RUNNABLE)]
    assert not lost, f"CHECKS entries whose block is gone: {lost}"


def test_every_substitution_is_used() -> None:
    """The substitution table stays minimal: each entry stands for something a doc names."""
    text = "".join(b.code for b in RUNNABLE)
    unused = [old for old, _ in SUBSTITUTIONS if old not in text]
    assert not unused, f"SUBSTITUTIONS entries no runnable block uses: {unused}"


# --- what the README's reader example promises (trial 17) --------------------------------------

def _readme_shape_comment() -> tuple[int, ...]:
    (block,) = [b for b in BLOCKS if b.doc == "README.md" and "get_frames([0, 300" in b.code]
    m = re.search(r"get_frames\(.*?#\s*\((\d+), (\d+), (\d+), 3\)", block.code)
    assert m, "the README's get_frames line documents its shape as (N, H, W, 3) in numbers"
    return (*(int(g) for g in m.groups()), 3)


@pytest.mark.parametrize("portrait", [False, True], ids=["landscape", "portrait"])
def test_readme_frame_shape_comment_is_true(make_synth, portrait: bool) -> None:
    """``size`` is the short side: the README's 16:9 shape holds, and a 9:16 video gives the
    transposed shape (the 0.1 README said ``(4, 224, W, 3)``, wrong for portrait video)."""
    import vidsel

    n, short, long_, _ = _readme_shape_comment()
    w, h = (180, 320) if portrait else (320, 180)
    clip = make_synth(num_frames=301, width=w, height=h, gop=60).path
    with vidsel.VideoReader(clip) as r:
        frames = r.get_frames([0, 300, 300, 42], size=224)
    assert frames.shape == ((n, long_, short, 3) if portrait else (n, short, long_, 3))
    assert frames.dtype == np.uint8


# --- examples/ ---------------------------------------------------------------------------------

def _run_example(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error::DeprecationWarning", *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_quickstart_example_runs_on_current_names(tmp_path: Path, tiny_siglip_dir: Path) -> None:
    """examples/quickstart.py, with a tiny local embedder, and no deprecated name used."""
    out = _run_example([str(ROOT / "examples" / "quickstart.py"), "--out", str(tmp_path / "q"),
                        "--embedder", f"hf:{tiny_siglip_dir}",
                        "--question", "where does the box go"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Selection(k=8, method='uniform'" in out.stdout
    assert "PatchSelection(method='codec'" in out.stdout
    assert any((tmp_path / "q").iterdir())


def test_custom_method_example_runs(tmp_path: Path, doc_media: Path) -> None:
    """examples/custom_method.py (docs/architecture.md says CI runs it), on a given video."""
    out = _run_example([str(ROOT / "examples" / "custom_method.py"),
                        str(doc_media / "clip.mp4")], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("uniform", "codec", "keyframes"):
        assert re.search(rf"^\s*{name}: \w+\s+\d+ tokens", out.stdout, flags=re.M), out.stdout
