"""vidsel in a few lines: generate a sample video, pick frames, look at them.

Run it from anywhere (no download, no GPU):

    python examples/quickstart.py                       # uniform + codec selection
    python examples/quickstart.py --embedder hf:/models/siglip-so400m-patch14-384

It writes into ./vidsel_out/quickstart/. In a notebook, the last expression of a cell that is
a ``Selection`` shows as a contact sheet, and ``sel.plot()`` draws the relevance curve.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidsel import VideoReader
from vidsel.codec import select_patches
from vidsel.selection import select_frames
from vidsel.synth import make_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="vidsel_out/quickstart")
    ap.add_argument("--embedder", help="e.g. hf:/path/to/siglip or open_clip:ViT-B-32@CKPT")
    ap.add_argument("--question", default="Where is the yellow box?")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. A sample video with known content: 4 scenes, a box moving across them.
    video = out / "sample.mp4"
    if not video.exists():
        make_video(video, scene="multi_scene", num_frames=240, n_scenes=4)
    with VideoReader(video) as reader:
        print(reader.metadata)  # frame count and timestamps come from the packets

    # 2. Uniform frames: no model needed.
    sel = select_frames(video, k=8, method="uniform")
    print(sel, sel.indices.tolist(), sel.timestamps_s.round(2).tolist())
    sel.save_contact_sheet(out / "uniform.png")  # what a notebook shows for `sel`

    # 3. Codec-aware patches at the same token budget as 8 frames: no model needed.
    patches = select_patches(video, budget_frames=8)
    print(patches)
    patches.save_contact_sheet(out / "codec.png")

    # 4. Frames relevant to a question: needs an embedder (local weights).
    if args.embedder:
        sel = select_frames(video, args.question, k=8, method="mdp3", embedder=args.embedder)
        print(sel, sel.scores.round(3).tolist() if sel.scores is not None else None)
        sel.save_contact_sheet(out / "mdp3.png")
        try:
            fig = sel.plot()  # a matplotlib Figure: relevance over time, chosen frames marked
            fig.savefig(out / "mdp3_relevance.png")
        except ImportError:
            print("pip install 'vidsel[plot]' for the relevance plot")
    else:
        print("no --embedder: skipped the question-relevant selection (see `vidsel demo`)")
    print(f"images in {out}/")


if __name__ == "__main__":
    main()
