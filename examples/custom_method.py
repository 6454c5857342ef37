"""Register a video-level method of your own and compare it with the built-in ones.

A method is a function ``fn(path, *, question, budget, geometry, **options)`` returning a
:class:`vidsel.results.Selection` (frames) or :class:`vidsel.results.PatchSelection` (patches).
Once registered it runs everywhere the built-ins do: ``vidsel.methods.run_method``,
``vidsel select --method``, ``vidsel batch`` and ``ovis_model``'s ``answer`` / ``ground``.

Run: ``python examples/custom_method.py [video]`` (default: a generated sample video).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import vidsel
from vidsel.methods import register_method, run_method
from vidsel.results import PatchConfig, Selection
from vidsel.synth import make_video


@register_method("keyframes", description="the stream's keyframes, evenly thinned to budget")
def keyframes(path: str, *, question: str | None, budget: int,
              geometry: PatchConfig) -> Selection:
    """Keyframes only: the cheapest frames to decode (no model)."""
    with vidsel.VideoReader(path) as reader:
        md = reader.metadata
        keys = md.keyframe_indices
        pick = keys[np.unique(np.round(np.linspace(0, len(keys) - 1, min(budget, len(keys))))
                              .astype(np.int64))]
        return Selection(indices=pick, timestamps_s=md.timestamps_s[pick], scores=None,
                         method="keyframes", source_fps=md.fps, path=reader.path,
                         num_frames=md.num_frames, tokens_per_frame=geometry.tokens_per_frame)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        video = argv[1]
    else:
        video = make_video(str(Path(tempfile.mkdtemp()) / "sample.mp4"), num_frames=120,
                           gop=10).path
    geometry = PatchConfig.preset("llava-ov-2")
    for name in ("uniform", "codec", "keyframes"):
        res = run_method(name, video, budget=4, geometry=geometry)
        print(f"{name:>10}: {res.kind:7} {res.num_tokens} tokens from "
              f"{len(res.source_frames)} frames at "
              f"{np.round(res.source_timestamps_s, 2).tolist()[:8]} s")


if __name__ == "__main__":
    main(sys.argv)
