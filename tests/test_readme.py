"""The README's Python example runs as written, on a generated 16:9 video and a tiny local
SigLIP standing in for the real weights (the only substitutions)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_python_example_runs(make_synth, tiny_siglip_dir: Path) -> None:
    clip = make_synth(num_frames=320, width=320, height=180, gop=60).path
    blocks = _python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no python example"
    for code in blocks:
        code = code.replace('"talk.mp4"', repr(clip))
        code = code.replace("hf:/models/siglip-so400m-patch14-384", f"hf:{tiny_siglip_dir}")
        scope: dict[str, object] = {}
        exec(compile(code, "README.md", "exec"), scope)
        if "frames" in scope:  # the reader part: the documented shape is the real one
            assert np.asarray(scope["frames"]).shape == (4, 224, 398, 3)


def test_architecture_doc_example_runs(make_synth) -> None:
    from vidsel.methods import METHODS

    clip = make_synth(num_frames=60, width=160, height=120, gop=10).path
    (code,) = _python_blocks(ROOT / "docs" / "architecture.md")
    scope: dict[str, object] = {}
    try:
        exec(compile(code.replace('"clip.mp4"', repr(clip)), "architecture.md", "exec"), scope)
        res = scope["res"]
        assert res.num_tokens == 4 * 196 and res.method == "keyframes"  # type: ignore[attr-defined]
    finally:
        if "keyframes" in METHODS:
            METHODS.unregister("keyframes")


def test_quickstart_example_runs_on_current_names(tmp_path: Path, tiny_siglip_dir: Path) -> None:
    """examples/quickstart.py, with a tiny local embedder, and no deprecated name used."""
    out = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", str(ROOT / "examples" / "quickstart.py"),
         "--out", str(tmp_path / "q"), "--embedder", f"hf:{tiny_siglip_dir}",
         "--question", "where does the box go"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Selection(k=8, method='uniform'" in out.stdout
    assert "PatchSelection(method='codec'" in out.stdout
    assert any((tmp_path / "q").iterdir())
