"""Selection without the ``embed`` extra: torch, transformers and safetensors blocked.

The array-level selectors (numpy DPP / MDP3), ``uniform`` end to end and the Ovis frame
selector's ``uniform`` mode work; every path that needs the extra (embedders, the embedding
cache, Qwen metadata) raises MissingDependencyError naming it.
"""

from __future__ import annotations

from pathlib import Path

BLOCK = ("torch", "transformers", "safetensors", "open_clip")


def test_uniform_and_numpy_selectors_work_without_torch(tmp_path: Path, run_without) -> None:
    res = run_without(BLOCK, f"""
        import numpy as np
        import vidsel, vidsel.embed, vidsel.select, vidsel.selection
        from vidsel import MissingDependencyError, select_frames
        from vidsel.embed import EmbeddingCache, load_embedder
        from vidsel.select import dpp, mdp3
        from vidsel.selection import FrameSelector, to_qwen
        from vidsel.synth import make_video

        info = make_video({str(tmp_path / "v.mp4")!r}, num_frames=20, width=64, height=48)
        sel = select_frames(info.path, k=4, method="uniform")
        assert len(sel) == 4 and sel.load_frames().shape[0] == 4
        x = np.random.default_rng(0).standard_normal((40, 8))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        assert len(mdp3(x, x[0], 4, segment_size=10)) == 4 and len(dpp(x, x[0], 4)) == 4
        convs = [{{"from": "human", "value": "<image>\\n" * 6 + "q"}}]
        assert len(FrameSelector(2, method="uniform")(convs, list(range(6)))[1]) == 2

        def fails(fn, *hints):
            try:
                fn()
            except MissingDependencyError as e:
                assert all(h in str(e) for h in hints), str(e)
            else:
                raise AssertionError(f"{{fn}} did not raise")

        fails(lambda: load_embedder("hf:/x"), "torch and transformers",
              "pip install 'vidsel[embed]'")
        fails(lambda: load_embedder("siglip"), "pip install 'vidsel[embed]'")
        fails(lambda: load_embedder("open_clip:ViT-B-32@x"), "pip install 'vidsel[clip]'")
        fails(lambda: select_frames(info.path, "q", k=2, embedder="hf:/x"), "vidsel[embed]")
        cache = EmbeddingCache({str(tmp_path / "cache")!r})
        meta = cache.key_material(video_id="v", model="m", indices=np.arange(2),
                                  timestamps_s=np.zeros(2), decode="d")
        fails(lambda: cache.load(meta), "safetensors", "pip install 'vidsel[embed]'")
        fails(lambda: to_qwen(sel), "pip install 'vidsel[embed]'")
        for name in {BLOCK!r}:
            assert name not in sys.modules, name
        print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")
