"""Embedders on tiny random models built offline; text chunking; offline errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.select.conftest import TINY_OPEN_CLIP
from vidsel.embed import (
    HFEmbedder,
    OpenClipEmbedder,
    available_embedders,
    head_tail_chunks,
    load_embedder,
    make_prompt_cleaner,
)
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError


def frames(n: int, h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_head_tail_chunks_matches_mdp3_scheme() -> None:
    assert head_tail_chunks(list(range(5)), 64) == [list(range(5))]
    assert head_tail_chunks(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]
    toks = list(range(100))
    chunks = head_tail_chunks(toks, 64)  # 2 chunks of 50: head then tail
    assert chunks == [toks[:50], toks[50:]]
    toks = list(range(200))  # 4 chunks of 50 taken head, tail, head, tail -> text order
    assert head_tail_chunks(toks, 64) == [toks[0:50], toks[50:100], toks[100:150], toks[150:]]
    for n in range(1, 300, 7):
        ch = head_tail_chunks(list(range(n)), 64)
        assert all(len(c) == len(ch[0]) <= 64 for c in ch)
        assert sorted({t for c in ch for t in c}) == list(range(n))  # every token covered


def test_prompt_cleaner_is_pluggable() -> None:
    clean = make_prompt_cleaner(heads=["Watch the video."], tails=["Answer with the letter."])
    assert clean("Watch the video. What moves?\nA. box\nAnswer with the letter.") == \
        "What moves?\nA. box"
    assert make_prompt_cleaner()("  as is ") == "as is"


def test_siglip_embedder(tiny_siglip_dir) -> None:
    emb = load_embedder(f"hf:{tiny_siglip_dir}", batch_size=3)
    assert isinstance(emb, HFEmbedder) and emb.dim == 32 and emb.model_type == "siglip"
    x = emb.embed_images(frames(7))
    assert x.shape == (7, 32) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    # batching does not change results; frames of other sizes are fine
    np.testing.assert_allclose(emb.embed_images(frames(7))[:2],
                               load_embedder(str(tiny_siglip_dir), batch_size=64)
                               .embed_images(frames(7))[:2], atol=1e-5)
    t = emb.embed_text("what moves left in the video")
    assert t.shape == (32,)
    assert np.linalg.norm(t) == pytest.approx(1.0, rel=1e-5)
    long = " ".join(["the red box moves left"] * 30)  # 150 + 1 tokens > 64: 3 chunks
    tl = emb.embed_text(long)
    assert np.linalg.norm(tl) < 1.0 + 1e-6  # mean of unit vectors, not re-normalised
    ids = emb.tokenizer(long, padding="max_length", max_length=64,
                        truncation=False)["input_ids"]
    chunks = head_tail_chunks(ids, 64)
    assert len(chunks) == 3
    import torch

    with torch.inference_mode():
        per_chunk = [emb.model.get_text_features(input_ids=torch.tensor([c])) for c in chunks]
    from vidsel.embed._base import unwrap_features

    want = np.mean([torch.nn.functional.normalize(unwrap_features(p), dim=-1)[0].numpy()
                    for p in per_chunk], axis=0)
    np.testing.assert_allclose(tl, want, atol=1e-5)


def test_hf_clip_embedder_and_prompt_cleaner(tiny_clip_dir) -> None:
    clean = make_prompt_cleaner(tails=["answer with option letter"])
    emb = HFEmbedder.from_pretrained(str(tiny_clip_dir), prompt_cleaner=clean)
    assert emb.model_type == "clip" and emb.dim == 16
    assert emb.embed_images(frames(2)).shape == (2, 16)
    a = emb.embed_text("what is in the video answer with option letter")
    b = emb.embed_text("what is in the video")
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert emb.embed_text(" ".join(["a red box"] * 40)).shape == (16,)  # 120 tokens: chunked


def test_open_clip_embedder(tiny_open_clip_ckpt) -> None:
    emb = load_embedder(f"open_clip:{TINY_OPEN_CLIP}@{tiny_open_clip_ckpt}", batch_size=4)
    assert isinstance(emb, OpenClipEmbedder) and emb.dim == 16
    x = emb.embed_images(frames(5, 48, 64))
    assert x.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    t = emb.embed_text("a dog moves right")
    assert np.linalg.norm(t) == pytest.approx(1.0, rel=1e-5)
    assert emb.embed_text(" ".join(["a dog moves right"] * 40)).shape == (16,)
    assert "open_clip:" in emb.cache_key
    with pytest.raises(InvalidArgumentError, match="needs weights"):
        OpenClipEmbedder.from_pretrained(TINY_OPEN_CLIP)  # never silently random
    rnd = load_embedder(f"open_clip:{TINY_OPEN_CLIP}@random")
    assert rnd.name.endswith("@random")


def test_offline_without_weights_fails_fast_with_instructions(tmp_path) -> None:
    with pytest.raises(ModelNotAvailableError, match="--local-dir"):
        load_embedder("hf:google/siglip-so400m-patch14-384")
    with pytest.raises(ModelNotAvailableError, match="no model directory"):
        load_embedder(f"hf:{tmp_path}/missing")
    with pytest.raises(ModelNotAvailableError, match=r"config\.json"):
        load_embedder(str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="open_clip"):
        load_embedder("open_clip:ViT-B-32@laion2b_s34b_b79k")
    with pytest.raises(ModelNotAvailableError, match="no open_clip checkpoint"):
        load_embedder(f"open_clip:ViT-B-32@{tmp_path}/nope.safetensors")


def test_registry_and_spec_errors() -> None:
    assert {"hf", "open_clip", "siglip"} <= set(available_embedders())
    with pytest.raises(InvalidArgumentError, match="embedder kind='nope'"):
        load_embedder("nope:thing")
    with pytest.raises(InvalidArgumentError, match="not a spec"):
        load_embedder("thing")
    with pytest.raises(InvalidArgumentError, match="not an open_clip model"):
        load_embedder("open_clip:NoSuchModel@x")


def _entry_args(n: int = 4, d: int = 3) -> tuple:
    from vidsel.embed import EmbeddingCache

    meta = EmbeddingCache.key_material(video_id="v", model="m", indices=np.arange(n),
                                       timestamps_s=np.arange(n) / 10.0, decode="exact@384")
    return meta, np.ones((n, d), np.float32), np.arange(n), np.arange(n) / 10.0


def test_cache_write_failure_keeps_the_computed_result(tmp_path, monkeypatch, caplog) -> None:
    from vidsel.embed import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache")
    meta, e, i, t = _entry_args()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EmbeddingCache, "save", disk_full)
    with caplog.at_level("WARNING", logger="vidsel.embed._cache"):
        entry, hit = cache.get_or_compute(meta, lambda: (e, i, t))
    assert not hit and entry.embeds.shape == (4, 3) and entry.indices.tolist() == [0, 1, 2, 3]
    assert str(cache.path_for(meta)) in caplog.text and "No space left" in caplog.text
    monkeypatch.undo()
    # a real failure, not a mock (works as root too): the cache root lies under a file
    (tmp_path / "a_file").write_text("x")
    entry, hit = EmbeddingCache(tmp_path / "a_file" / "cache").get_or_compute(
        meta, lambda: (e, i, t))
    assert not hit and entry.embeds.shape == (4, 3)


def test_cache_write_failure_from_the_safetensors_writer(tmp_path, monkeypatch, caplog) -> None:
    import safetensors.numpy
    from safetensors import SafetensorError

    from vidsel.embed import EmbeddingCache

    def io_error(*a, **k):
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", io_error)
    meta, e, i, t = _entry_args()
    cache = EmbeddingCache(tmp_path)
    with caplog.at_level("WARNING", logger="vidsel.embed._cache"):
        entry, hit = cache.get_or_compute(meta, lambda: (e, i, t))
    assert not hit and entry.embeds.shape == (4, 3)
    assert "could not write" in caplog.text
    assert not list(tmp_path.rglob("*.tmp"))  # the temporary file is cleaned up


@pytest.mark.parametrize("bad", ["missing_key", "bad_shapes", "indices_2d"])
def test_malformed_cache_entry_is_a_miss(tmp_path, caplog, bad: str) -> None:
    from safetensors.numpy import save_file

    from vidsel.embed import EmbeddingCache

    cache = EmbeddingCache(tmp_path)
    meta, e, i, t = _entry_args()
    tensors = {"embeds": e, "indices": i.astype(np.int64), "timestamps_s": t}
    if bad == "missing_key":
        del tensors["timestamps_s"]
    elif bad == "bad_shapes":
        tensors["embeds"] = np.ones((5, 3), np.float32)
    else:
        tensors["indices"] = np.zeros((2, 2), np.int64)
    path = cache.path_for(meta)
    path.parent.mkdir(parents=True)
    save_file(tensors, str(path), metadata=meta)
    with caplog.at_level("WARNING", logger="vidsel.embed._cache"):
        assert cache.load(meta) is None
    assert "malformed cache entry" in caplog.text and str(path) in caplog.text
    calls = []
    entry, hit = cache.get_or_compute(meta, lambda: calls.append(1) or (e, i, t))
    assert not hit and calls == [1] and entry.embeds.shape == (4, 3)
    assert cache.load(meta) is not None  # the recomputed entry replaced the bad one


def test_hf_fingerprint_tracks_commits_and_local_weights(tmp_path, monkeypatch) -> None:
    import os

    from vidsel.embed import _hf

    assert _hf._fingerprint("org/model", None, "abc123") == "commit=abc123"
    # no commit on the config: the cached snapshot's directory name
    snap = tmp_path / "models--org--model" / "snapshots" / "deadbeef"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name, revision=None: str(snap / name))
    assert _hf._fingerprint("org/model", None) == "commit=deadbeef"
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name, revision=None: None)
    assert _hf._fingerprint("org/model", "v2") == "rev=v2"
    # local directories: replacing the weights (same size) changes the fingerprint
    d = tmp_path / "local"
    d.mkdir()
    (d / "config.json").write_text('{"a": 1}')
    (d / "model.safetensors").write_bytes(b"x" * 16)
    before = _hf._fingerprint(str(d), None)
    assert before == _hf._fingerprint(str(d), None)
    st = (d / "model.safetensors").stat()
    os.utime(d / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _hf._fingerprint(str(d), None) != before


def test_hf_embedder_records_the_commit_hash(tiny_siglip_dir, monkeypatch) -> None:
    from vidsel.embed import _hf

    seen = {}
    real = _hf._fingerprint

    def spy(src, revision, commit=None):
        seen["commit"] = commit
        return real(src, revision, commit)

    monkeypatch.setattr(_hf, "_fingerprint", spy)
    emb = _hf.HFEmbedder.from_pretrained(str(tiny_siglip_dir))
    assert "commit" in seen  # the config's _commit_hash is passed along (None for a local dir)
    assert emb._weights_fingerprint() == real(str(tiny_siglip_dir), None)


@pytest.mark.parametrize("spec", ["hf:/nowhere", "open_clip:ViT-B-32@random"])
def test_unknown_embedder_options_are_invalid_argument_errors(spec) -> None:
    """Refused before anything loads (no TypeError from the loader's signature)."""
    with pytest.raises(InvalidArgumentError, match=r"embedder does not take \['bogus'\]; "
                                                   r"allowed: \['batch_size', 'device'"):
        load_embedder(spec, bogus=1)
