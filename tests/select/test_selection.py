"""select_frames end to end on synthetic videos, the Selection type, cache and adapters."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.io import VideoReader
from vidsel.results import VisualSelection
from vidsel.selection import (
    DEFAULT_NUM_CANDIDATES,
    FrameSelector,
    Selection,
    candidate_indices,
    indices_for,
    qwen_video_metadata,
    sample_indices_fn,
    select_frames,
    to_qwen,
)
from vidsel.selection._candidates import decode_identity, embed_candidates
from vidsel.synth import decode_counter, make_video


@pytest.fixture(scope="module")
def counter_video(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("videos") / "counter.mp4"
    make_video(path, scene="counter", num_frames=90, fps=30, width=160, height=120, gop=15)
    return str(path)


@pytest.fixture(scope="module")
def siglip(tiny_siglip_dir):
    from vidsel.embed import load_embedder

    return load_embedder(f"hf:{tiny_siglip_dir}")


def test_uniform_needs_no_model_and_returns_real_indices(counter_video) -> None:
    sel = select_frames(counter_video, k=8, method="uniform")
    with VideoReader(counter_video) as r:
        assert sel.indices.tolist() == r.uniform_indices(8).tolist()
        np.testing.assert_allclose(sel.timestamps_s, r.metadata.timestamps_s[sel.indices])
    assert sel.scores is None and sel.source_fps == pytest.approx(30.0)
    assert sel.num_frames == 90 and sel.num_candidates == 90
    frames = sel.load_frames()
    assert frames.shape == (8, 120, 160, 3)
    assert [decode_counter(f) for f in frames] == sel.indices.tolist()
    d = sel.to_dict()
    assert json.loads(json.dumps(d)) == d and d["scores"] is None
    assert Selection.from_dict(d).indices.tolist() == sel.indices.tolist()
    assert "k=8" in repr(sel) and "uniform" in repr(sel) and "[" not in repr(sel)


def test_methods_need_an_embedder_and_a_question(counter_video) -> None:
    with pytest.raises(InvalidArgumentError, match="needs an embedder"):
        select_frames(counter_video, "what?", k=4, method="mdp3")
    with pytest.raises(InvalidArgumentError, match=r"selector='magic' is not registered"):
        select_frames(counter_video, "what?", k=4, method="magic")


@pytest.mark.parametrize("method", ["mdp3", "mdp3-reference", "dpp", "topk", "bolt", "aks"])
def test_every_method_end_to_end(counter_video, siglip, method) -> None:
    params = {"segment_size": 16} if method == "mdp3-reference" else {}
    sel = select_frames(counter_video, "what is in the video", k=6, method=method,
                        embedder=siglip, candidates=32, params=params)
    assert len(sel) == 6 and np.all(np.diff(sel.indices) > 0)
    assert sel.scores is not None and sel.scores.shape == (6,)
    assert sel.num_candidates == 32
    assert sel.params["embedder"] == siglip.name
    assert set(sel.timings_s) >= {"decode", "embed_images", "embed_text", "select"}
    assert json.dumps(sel.to_dict())


class CountingReader(VideoReader):
    """A real reader that counts the frames it is asked to decode."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.decoded: list[int] = []

    def decode(self, indices, **kw):
        batch = super().decode(indices, **kw)
        self.decoded += np.atleast_1d(indices).tolist()
        return batch


@pytest.fixture(scope="module")
def counting_siglip(tiny_siglip_dir):
    """The tiny SigLIP as a real HFEmbedder subclass that counts the frames it embeds."""
    from vidsel.embed import HFEmbedder

    class Counting(HFEmbedder):
        embedded: ClassVar[list[np.ndarray]] = []

        def embed_images(self, frames, **kw):
            out = super().embed_images(frames, **kw)
            self.embedded.append(np.asarray(frames).copy())
            return out

    return Counting.from_pretrained(str(tiny_siglip_dir))


def test_cache_hit_avoids_decoding_and_image_encoding(counter_video, counting_siglip,
                                                      tmp_path) -> None:
    emb = counting_siglip
    emb.embedded.clear()
    with CountingReader(counter_video) as r:
        first = select_frames(r, "a red box", k=5, embedder=emb, candidates=24,
                              cache_dir=tmp_path)
        assert not first.cache_hit and len(r.decoded) == 24
        assert sum(len(f) for f in emb.embedded) == 24
    assert len(list(tmp_path.rglob("*.safetensors"))) == 1
    assert not list(tmp_path.rglob("*.pkl"))
    emb.embedded.clear()
    with CountingReader(counter_video) as r:
        again = select_frames(r, "a red box", k=5, embedder=emb, candidates=24,
                              cache_dir=tmp_path)
        other = select_frames(r, "where does the dog go", k=5, embedder=emb, candidates=24,
                              cache_dir=tmp_path, method="topk")
        assert r.decoded == [] and emb.embedded == []  # no decoding, no image encoding
    assert again.cache_hit and again.indices.tolist() == first.indices.tolist()
    np.testing.assert_array_equal(again.scores, first.scores)
    assert other.cache_hit and "decode" not in other.timings_s
    # a different candidate pool is a different entry
    third = select_frames(counter_video, "a red box", k=5, embedder=emb, candidates=16,
                          cache_dir=tmp_path)
    assert not third.cache_hit
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_a_forged_cache_entry_is_recomputed_not_used(counter_video, counting_siglip,
                                                     tmp_path, caplog) -> None:
    """Issue 10: an entry under the right key with forged timestamps (hash re-forged too)
    changed the selection; now it is recomputed, with a warning, and rewritten."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from vidsel.embed._cache import content_sha

    emb = counting_siglip
    plain = select_frames(counter_video, "a red box", k=4, embedder=emb, candidates=16)
    first = select_frames(counter_video, "a red box", k=4, embedder=emb, candidates=16,
                          cache_dir=tmp_path)
    (entry,) = tmp_path.rglob("*.safetensors")
    tensors = load_file(str(entry))
    with safe_open(str(entry), framework="numpy") as f:
        stored = dict(f.metadata())
    tensors["timestamps_s"] = np.full_like(tensors["timestamps_s"], 1e12)
    tensors["embeds"] = tensors["embeds"][::-1].copy()  # would change the selection
    stored["content_sha"] = content_sha(tensors)
    save_file(tensors, str(entry), metadata=stored)
    emb.embedded.clear()
    with caplog.at_level("WARNING", logger="vidsel.embed._cache"):
        again = select_frames(counter_video, "a red box", k=4, embedder=emb, candidates=16,
                              cache_dir=tmp_path)
    assert "timestamps that are not their frames'" in caplog.text and str(entry) in caplog.text
    assert not again.cache_hit and sum(len(f) for f in emb.embedded) == 16
    assert again.indices.tolist() == first.indices.tolist() == plain.indices.tolist()
    np.testing.assert_allclose(again.timestamps_s, plain.timestamps_s)
    assert select_frames(counter_video, "a red box", k=4, embedder=emb, candidates=16,
                         cache_dir=tmp_path).cache_hit  # the entry was rewritten


def test_cache_key_is_content_not_path(counter_video, siglip, tmp_path) -> None:
    import shutil

    from vidsel.embed import content_id

    copy = tmp_path / "copy.mp4"
    shutil.copy(counter_video, copy)
    assert content_id(copy) == content_id(counter_video)
    select_frames(counter_video, "a", k=3, embedder=siglip, candidates=12, cache_dir=tmp_path)
    assert select_frames(copy, "a", k=3, embedder=siglip, candidates=12,
                         cache_dir=tmp_path).cache_hit


def test_candidates(counter_video) -> None:
    with VideoReader(counter_video) as r:
        assert len(candidate_indices(r, 16)) == 16
        assert candidate_indices(r, "uniform:16").tolist() == candidate_indices(r, 16).tolist()
        assert candidate_indices(r, "fps:1").tolist() == [0, 30, 60]
        assert len(candidate_indices(r, "all")) == 90
        for bad in ("fps:0", "every", 0, "uniform:x"):
            with pytest.raises(InvalidArgumentError, match="candidates"):
                candidate_indices(r, bad)


def test_keyframe_candidates(counter_video, siglip) -> None:
    sel = select_frames(counter_video, "a box", k=3, embedder=siglip, candidates=30,
                        candidate_mode="keyframe")
    assert set(sel.indices.tolist()) <= {0, 15, 30, 45, 60, 75}  # gop = 15
    assert sel.num_candidates <= 6


def test_keyframe_mode_hands_each_keyframe_to_the_embedder_and_selector_once(
        counter_video, counting_siglip, tmp_path) -> None:
    """Trial 18: one-per-second candidates on long-GOP video were many copies of few
    keyframes. Each keyframe is decoded, embedded and offered to the selector once."""
    emb = counting_siglip
    emb.embedded.clear()
    with CountingReader(counter_video) as r:
        keys = r.metadata.keyframe_indices.tolist()
        assert keys == [0, 15, 30, 45, 60, 75]
        sel = select_frames(r, "a box", k=4, embedder=emb, candidates=30,
                            candidate_mode="keyframe", cache_dir=tmp_path)
        assert sorted(r.decoded) == keys  # 30 candidates -> 6 keyframes, each decoded once
    embedded = np.concatenate(emb.embedded)
    assert len(embedded) == 6
    assert len({f.tobytes() for f in embedded}) == 6  # no picture twice
    assert [decode_counter(f) for f in embedded] == keys
    assert sel.num_candidates == 6 and len(sel) == 4
    assert set(sel.indices.tolist()) <= set(keys)
    np.testing.assert_array_equal(sel.candidate_timestamps_s, np.array(keys) / 30.0)
    # the candidate pool the selector saw: 6 distinct frames, k larger than that gives 6
    every = select_frames(counter_video, "a box", k=10, embedder=emb, candidates=30,
                          candidate_mode="keyframe", method="topk", cache_dir=tmp_path)
    assert every.indices.tolist() == keys and every.cache_hit
    # uniform snaps too, instead of ignoring candidate_mode
    uni = select_frames(counter_video, k=3, method="uniform", candidate_mode="keyframe")
    assert set(uni.indices.tolist()) <= set(keys) and len(uni) == 3


def test_keyframe_mode_on_a_real_long_gop_clip(fixtures_dir, counting_siglip) -> None:
    """40 s of 640x360 H.264 with 5 keyframes: 40 one-per-second candidates are 5 frames."""
    clip = fixtures_dir / "clips" / "intelsamplevideos__bottle-detection.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} is not available")
    emb = counting_siglip
    emb.embedded.clear()
    sel = select_frames(clip, "a bottle", k=8, embedder=emb, candidates="fps:1",
                        candidate_mode="keyframe", method="topk")
    with VideoReader(clip) as r:
        keys = r.metadata.keyframe_indices.tolist()
    embedded = np.concatenate(emb.embedded)
    assert sel.num_candidates == len(embedded) <= len(keys) < 8
    assert len({f.tobytes() for f in embedded}) == len(embedded)  # distinct pictures
    assert sel.indices.tolist() == sorted(set(sel.indices.tolist()) & set(keys))
    assert len(sel) == sel.num_candidates


def test_progress_bar_while_embedding(counter_video, siglip, capsys) -> None:
    from vidsel._progress import enable_progress

    select_frames(counter_video, "a box", k=3, embedder=siglip, candidates=8, progress=True)
    assert "embedding frames" in capsys.readouterr().err
    select_frames(counter_video, "a box", k=3, embedder=siglip, candidates=8, progress=False)
    select_frames(counter_video, "a box", k=3, embedder=siglip, candidates=8)
    assert capsys.readouterr().err == ""  # silent unless asked
    enable_progress()
    try:
        select_frames(counter_video, "a box", k=3, embedder=siglip, candidates=8)
        assert "embedding frames" in capsys.readouterr().err
    finally:
        enable_progress(False)
    siglip.embed_images(np.zeros((3, 16, 16, 3), np.uint8), progress=True)
    assert "embedding frames" in capsys.readouterr().err


def test_selection_validates_itself() -> None:
    ok = dict(timestamps_s=[0.0, 1.0], scores=None, method="x", source_fps=30.0)
    Selection(indices=np.array([1, 5]), **ok)
    with pytest.raises(InvalidArgumentError, match="ascending"):
        Selection(indices=np.array([5, 1]), **ok)
    with pytest.raises(InvalidArgumentError, match="ascending"):
        Selection(indices=np.array([1, 1]), **ok)
    with pytest.raises(InvalidArgumentError, match="lengths differ"):
        Selection(indices=np.array([1, 2, 3]), **ok)
    with pytest.raises(InvalidArgumentError, match="source_fps"):
        Selection(indices=np.array([1, 2]), timestamps_s=[0.0, 1.0], scores=None, method="x",
                  source_fps=0.0)
    with pytest.raises(InvalidArgumentError, match="outside"):
        Selection(indices=np.array([1, 9]), num_frames=5, **ok)
    sel = Selection(indices=np.array([1, 5]), **ok)
    with pytest.raises(ValueError):
        sel.indices[0] = 3  # read-only


def test_qwen_and_transformers_adapters(counter_video) -> None:
    sel = select_frames(counter_video, k=5, method="uniform")
    md = qwen_video_metadata(sel, pad_to_multiple=2)
    assert md["fps"] == pytest.approx(30.0) and md["total_num_frames"] == 90
    assert md["frames_indices"] == [*sel.indices.tolist(), int(sel.indices[-1])]  # even count
    frames, vmd = to_qwen(sel, size=64)
    assert frames.shape[0] == 6 and frames.shape[1] == 64
    assert vmd.frames_indices == md["frames_indices"] and vmd.fps == pytest.approx(30.0)
    assert vmd.timestamps[1] == pytest.approx(sel.timestamps_s[1])
    fn = sample_indices_fn(sel)
    from transformers.video_utils import VideoMetadata

    assert fn(VideoMetadata(total_num_frames=90, fps=30.0)).tolist() == sel.indices.tolist()
    mapped = fn(VideoMetadata(total_num_frames=45, fps=15.0))  # a decoder seeing half the frames
    assert mapped.tolist() == np.round(sel.timestamps_s * 15).astype(int).tolist()


def test_ovis_style_frame_selector(siglip) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(10)]
    convs = [{"from": "human", "value": "<image>\n" * 10 + "What moves?"},
             {"from": "gpt", "value": "A box."}]
    sel = FrameSelector(4, embedder=siglip, return_indices=True)
    new_convs, kept, idx = sel(convs, frames)
    assert len(kept) == 4 and len(idx) == 4
    assert new_convs[0]["value"].count("<image>") == 4
    assert new_convs[0]["value"].endswith("What moves?")
    assert new_convs[1] == convs[1]
    assert all(kept[j] is frames[int(i)] for j, i in enumerate(idx))
    small = FrameSelector(16, embedder=siglip)
    assert small(convs, frames) == (convs, frames)  # nothing to drop
    uni = FrameSelector(5, method="uniform")
    c2, f2 = uni(convs, frames)
    assert c2[0]["value"] == "<image>\n" * 5 + "What moves?" and len(f2) == 5


def test_timestamp_mapping_to_another_decoder_is_explicit_and_never_merges_frames() -> None:
    from transformers.video_utils import VideoMetadata

    # stream starting at 0.5 s, 30 fps, 90 frames
    idx = np.array([0, 12, 13, 60])
    sel = Selection(indices=idx, timestamps_s=0.5 + idx / 30.0, scores=None, method="x",
                    source_fps=30.0, num_frames=90, path="clip.mp4")
    assert indices_for(sel, 90, 30.0).tolist() == idx.tolist()  # same count: unchanged
    assert indices_for(sel, None).tolist() == idx.tolist()
    # a decoder that sees twice the frames (e.g. field-doubled): the stream start maps to 0
    assert indices_for(sel, 180, 60.0).tolist() == [0, 24, 26, 120]
    # half the frames: 12 and 13 both land on frame 6 -> an error naming the video, not 3 frames
    with pytest.raises(InvalidArgumentError,
                       match=r"clip\.mp4: the decoder reports 45 frames at 15 fps where vidsel "
                             r"counted 90.*merges frames 12 and 13"):
        indices_for(sel, 45, 15.0)
    fn = sample_indices_fn(sel)
    assert fn(VideoMetadata(total_num_frames=90, fps=30.0)).tolist() == idx.tolist()
    with pytest.raises(InvalidArgumentError, match="1 selected frame"):
        fn(VideoMetadata(total_num_frames=45, fps=15.0))
    # one frame fewer at the same rate (a dropped trailing frame): clipped, still distinct
    assert fn(VideoMetadata(total_num_frames=89, fps=30.0)).tolist() == idx.tolist()


def test_frame_selector_checks_placeholder_count_and_keeps_text_intact(siglip) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(6)]
    uni = FrameSelector(3, method="uniform", return_indices=True)  # keeps 0, 2, 5 (round)
    convs = [{"from": "human", "value": "<image>\n" * 5 + "What moves?"}]
    with pytest.raises(InvalidArgumentError,
                       match=r"conversation has 5 '<image>' placeholders but 6 frames"):
        uni(convs, frames)
    with pytest.raises(InvalidArgumentError, match="has 0 '<frame>' placeholders"):
        FrameSelector(3, method="uniform", image_token="<frame>")(convs, frames)
    # the trailing newline after the last (kept) frame is not dropped, and text that happens
    # to be a bare newline between two placeholders belongs to the frame before it
    convs = [{"from": "human", "value": "Look:<image>\n<image>\n<image><image>\n<image>\n"
                                        "<image>\n"},
             {"from": "gpt", "value": "ok\n"}]
    out, kept, idx = uni(convs, frames)
    assert idx.tolist() == [0, 2, 5] and len(kept) == 3
    assert out[0]["value"] == "Look:<image>\n<image><image>\n"
    assert out[1] == convs[1]
    # frames can be spread over turns; the counter is global
    convs = [{"from": "human", "value": "<image>\n<image>\nfirst"},
             {"from": "gpt", "value": "ok"},
             {"from": "human", "value": "<image>\n<image>\n<image>\n<image>\nsecond"}]
    out, _, idx = uni(convs, frames)
    assert out[0]["value"] == "<image>\nfirst"
    assert out[2]["value"] == "<image>\n<image>\nsecond"
    assert sum(c["value"].count("<image>") for c in out) == len(idx)


def test_unknown_params_fail_before_decoding(tmp_path) -> None:
    never_opened = str(tmp_path / "no_such_video.mp4")  # opening it would raise another error
    with pytest.raises(InvalidArgumentError, match=r"'uniform' does not take \['lam'\]"):
        select_frames(never_opened, k=3, method="uniform", params={"lam": 0.2})
    with pytest.raises(InvalidArgumentError, match=r"'uniform' does not take \['lam'\]"):
        FrameSelector(3, method="uniform", params={"lam": 0.2})


@pytest.fixture(scope="module")
def damaged_tail_video(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 frames whose second half (frames 15-29) has its compressed data zeroed."""
    import av

    path = tmp_path_factory.mktemp("damaged") / "tail.mp4"
    make_video(path, scene="counter", num_frames=30, fps=30, width=64, height=48, gop=15)
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as c:
        packets = sorted((int(p.pts), p.pos, p.size) for p in c.demux(c.streams.video[0])
                         if p.size)
    for _, pos, size in packets[15:]:
        data[pos:pos + size] = bytes(size)
    out = path.with_name("tail_zeroed.mp4")
    out.write_bytes(bytes(data))
    return str(out)


def test_no_decodable_candidate_is_a_corrupt_video_error(damaged_tail_video, siglip,
                                                         caplog) -> None:
    from vidsel.errors import CorruptVideoError

    cand = np.arange(15, 30)
    with VideoReader(damaged_tail_video) as r, pytest.raises(
            CorruptVideoError,
            match=r"tail_zeroed\.mp4: none of the 15 candidate frames could be decoded") as info:
        embed_candidates(r, cand, siglip, size=None, mode="exact")
    assert info.value.path == damaged_tail_video
    assert info.value.missing == tuple(cand.tolist())
    # the whole pipeline: the undecodable candidates are skipped with a warning
    with caplog.at_level("WARNING", logger="vidsel.selection._candidates"):
        sel = select_frames(damaged_tail_video, "a box", k=3, embedder=siglip, candidates=30)
    assert "could not be decoded and are skipped" in caplog.text
    assert 0 < sel.num_candidates <= 15 and int(sel.indices.max()) < 15  # B-frames lean on 15


def test_cache_key_includes_the_decode_backend(counter_video, siglip, tmp_path) -> None:
    from safetensors import safe_open

    with VideoReader(counter_video) as r:
        assert decode_identity(r) == "backend=pyav|interp=BILINEAR"
    with VideoReader(counter_video, interpolation="AREA") as r:
        assert decode_identity(r) == "backend=pyav|interp=AREA"
    first = select_frames(counter_video, "a", k=3, embedder=siglip, candidates=8,
                          cache_dir=tmp_path)
    (entry,) = tmp_path.rglob("*.safetensors")
    with safe_open(str(entry), framework="numpy") as f:
        assert "backend=pyav" in f.metadata()["decode"]
    assert not first.cache_hit
    other = select_frames(counter_video, "a", k=3, embedder=siglip, candidates=8,
                          cache_dir=tmp_path, backend="decord")
    assert not other.cache_hit  # PyAV embeddings are not served to a decord run
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_selection_is_a_visual_selection_with_json_round_trip(counter_video) -> None:
    sel = select_frames(counter_video, k=4, method="uniform", tokens_per_frame=196)
    assert isinstance(sel, VisualSelection) and sel.kind == "frames"
    assert sel.source_frames.tolist() == sel.indices.tolist()
    np.testing.assert_array_equal(sel.source_timestamps_s, sel.timestamps_s)
    assert sel.num_tokens == 4 * 196 and sel.path == counter_video
    assert select_frames(counter_video, k=4, method="uniform").num_tokens is None
    images, labels = sel.images()
    assert images.shape == (4, 120, 160, 3) and images.dtype == np.uint8
    assert [decode_counter(f) for f in images] == sel.indices.tolist()
    assert labels[0] == "frame_000000_0000.000s" and len(labels) == 4
    assert labels[1] == f"frame_{int(sel.indices[1]):06d}_{float(sel.timestamps_s[1]):08.3f}s"
    d = json.loads(json.dumps(sel.to_dict()))
    assert d["path"] == counter_video and d["tokens_per_frame"] == 196 and "video" not in d
    back = Selection.from_dict(d)
    assert back.to_dict() == d and back.num_tokens == sel.num_tokens
    nan = Selection(indices=np.array([1, 2]), timestamps_s=[0.0, 1.0], scores=[0.5, np.nan],
                    method="x", source_fps=30.0)
    d = json.loads(json.dumps(nan.to_dict()))
    assert d["scores"] == [0.5, None]
    assert np.isnan(Selection.from_dict(d).scores[1])
    with pytest.raises(InvalidArgumentError, match="tokens_per_frame"):
        select_frames(counter_video, k=4, method="uniform", tokens_per_frame=0)


def test_renamed_names_keep_deprecated_aliases(counter_video) -> None:
    with pytest.warns(DeprecationWarning, match=r"select_frames\W+video\W.*deprecated"):
        sel = select_frames(video=counter_video, k=3, method="uniform")
    assert sel.path == counter_video
    with pytest.warns(DeprecationWarning, match=r"Selection\W+video\W.*deprecated"):
        old = Selection(indices=np.array([0]), timestamps_s=[0.0], scores=None, method="x",
                        source_fps=30.0, video="a.mp4")
    assert old.path == "a.mp4"
    with pytest.warns(DeprecationWarning, match=r"Selection\W+video\W.*deprecated"):
        assert old.video == "a.mp4"
    legacy = {**sel.to_dict(), "video": "b.mp4"}
    del legacy["path"], legacy["tokens_per_frame"], legacy["kind"]
    assert Selection.from_dict(legacy).path == "b.mp4"  # dicts written before the rename
    # the adapters moved to vidsel.selection; the methods still answer, with a warning
    with pytest.warns(DeprecationWarning, match=r"use vidsel\.selection\.qwen_video_metadata"):
        assert sel.video_metadata() == qwen_video_metadata(sel)
    with pytest.warns(DeprecationWarning, match=r"use vidsel\.selection\.indices_for"):
        assert sel.indices_for(90).tolist() == sel.indices.tolist()
    with pytest.warns(DeprecationWarning, match="padded_indices"):
        assert sel.padded_indices(2).tolist() == [*sel.indices.tolist(), int(sel.indices[-1])]
    with pytest.warns(DeprecationWarning, match="sample_indices_fn"):
        assert sel.sample_indices_fn()(None).tolist() == sel.indices.tolist()
    with pytest.warns(DeprecationWarning, match="to_qwen"):
        assert sel.to_qwen(size=32)[0].shape[0] == 4
    assert DEFAULT_NUM_CANDIDATES == 128


@pytest.mark.parametrize("kwargs,match", [
    ({"candidates": object()}, "candidates=<object"),
    ({"k": "3"}, "k='3' must be an integer"),
    ({"embed_size": -1}, "embed_size=-1 must be >= 1"),
    ({"embed_size": "big"}, "embed_size='big' must be an integer"),
    ({"params": "x"}, "params='x' must be a mapping"),
    ({"params": {1: 2}}, "params=.* must be a mapping"),
    ({"embedder_options": "x"}, "embedder_options='x' must be a mapping"),
    ({"cache_dir": 3}, "cache_dir=3 must be a directory path"),
    ({"method": ["mdp3"]}, "is not registered"),
])
def test_bad_arguments_are_invalid_argument_errors(counter_video, kwargs, match) -> None:
    """Never a bare TypeError / ValueError from inside; checked before any model loads (the
    embedder spec below does not exist)."""
    kwargs = {"method": "topk", "embedder": "hf:/nowhere", **kwargs}
    with pytest.raises(InvalidArgumentError, match=match):
        select_frames(counter_video, "q", **kwargs)


@pytest.mark.parametrize("conversations,frames,match", [
    (None, [0, 1], "conversations=None must be a list of turns"),
    ("<image><image>", [0, 1], "must be a list of turns"),
    ([1], [0, 1], r"conversations\[0\]=1 must be a turn"),
    ([{"from": "human"}], [0, 1], r"conversations\[0\]=.* string 'value'"),
    ([{"from": "human", "value": 3}], [0, 1], r"conversations\[0\]=.* string 'value'"),
    ([{"from": 3, "value": "<image><image>"}], [0, 1], "a string 'from'"),
    ([{"from": "human", "value": "<image>"}], None, "frames must be a sequence"),
    ([{"from": "human", "value": "<image>"}], 3, "frames must be a sequence"),
])
def test_frame_selector_refuses_malformed_conversations(conversations, frames, match) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        FrameSelector(1, method="uniform")(conversations, frames)


@pytest.mark.parametrize("kwargs,match", [
    ({"params": "x"}, "params='x' must be a mapping"),
    ({"embedder_options": [1]}, r"embedder_options=\[1\] must be a mapping"),
    ({"image_token": ""}, "image_token='' must be a non-empty string"),
    ({"image_token": 3}, "image_token=3 must be a non-empty string"),
    ({"k": "3"}, "k='3' must be an integer"),
])
def test_frame_selector_refuses_bad_options(kwargs, match) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        FrameSelector(**{"method": "uniform", **kwargs})


# -- select_in_window -------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["topk", "mdp3", "uniform"])
def test_select_in_window_over_the_whole_video_equals_select_frames(counter_video, siglip,
                                                                    method) -> None:
    from vidsel.methods import run_method
    from vidsel.selection import select_in_window

    emb = None if method == "uniform" else siglip
    question = None if method == "uniform" else "a red box"
    for candidates in (None, 24, "fps:10", "all"):
        whole = select_in_window(counter_video, method, 6, question=question, embedder=emb,
                                 candidates=candidates)
        ref = select_frames(counter_video, question, 6, method=method, embedder=emb,
                            candidates=candidates)
        via_registry = run_method(method, counter_video, question=question, budget=6,
                                  embedder=emb, candidates=candidates)
        assert whole.indices.tolist() == ref.indices.tolist() == via_registry.indices.tolist()
        np.testing.assert_array_equal(whole.timestamps_s, ref.timestamps_s)
        assert whole.num_candidates == ref.num_candidates
        assert whole.num_frames == 90 and whole.params == ref.params
        if emb is not None:
            np.testing.assert_allclose(whole.scores, ref.scores)
            np.testing.assert_array_equal(whole.candidate_timestamps_s,
                                          ref.candidate_timestamps_s)


def test_select_in_window_stays_in_the_window(counter_video, siglip, tmp_path) -> None:
    from vidsel.selection import select_in_window

    with VideoReader(counter_video) as r:
        ts = r.metadata.timestamps_s
        sel = select_in_window(r, "mdp3", 5, start_frame=20, end_frame=59, question="a box",
                               embedder=siglip, candidates=16, tokens_per_frame=64)
        assert not r.closed  # a given reader stays open
        frames = r.get_frames(sel.indices)
    idx = sel.indices.tolist()
    assert len(idx) == 5 and idx == sorted(set(idx)) and all(20 <= i <= 59 for i in idx)
    # 16 candidates spread evenly over the window, both ends included
    pool = np.unique(np.round(np.linspace(20, 59, 16)).astype(np.int64))
    assert sel.num_candidates == 16 and set(idx) <= set(pool.tolist())
    np.testing.assert_array_equal(sel.candidate_timestamps_s, ts[pool])
    np.testing.assert_array_equal(sel.timestamps_s, ts[sel.indices])
    assert [decode_counter(f) for f in frames] == idx  # true source frames
    assert sel.num_frames == 90 and sel.source_fps == pytest.approx(30.0)
    assert sel.num_tokens == 5 * 64 and sel.method == "mdp3"
    # other pools: all frames of the window, fps restricted to it, keyframes inside it
    every = select_in_window(counter_video, "topk", 4, start_frame=70, end_frame=75,
                             question="a box", embedder=siglip, candidates="all")
    assert every.num_candidates == 6 and set(every.indices.tolist()) <= set(range(70, 76))
    fps = select_in_window(counter_video, "topk", 3, start_frame=10, end_frame=40,
                           question="a box", embedder=siglip, candidates="fps:5")
    assert fps.num_candidates == 5 and all(10 <= i <= 40 for i in fps.indices)
    keys = select_in_window(counter_video, "topk", 2, start_frame=10, end_frame=50,
                            question="a box", embedder=siglip, candidate_mode="keyframe",
                            cache_dir=tmp_path)
    assert set(keys.indices.tolist()) <= {15, 30, 45}  # GOP 15
    again = select_in_window(counter_video, "topk", 2, start_frame=10, end_frame=50,
                             question="a box", embedder=siglip, candidate_mode="keyframe",
                             cache_dir=tmp_path)
    assert again.cache_hit and again.indices.tolist() == keys.indices.tolist()
    # a selector needing no model draws from every frame of the window by default
    uni = select_in_window(counter_video, "uniform", 3, start_frame=30, end_frame=60)
    assert uni.indices.tolist() == [30, 45, 60] and uni.num_candidates == 31


@pytest.mark.parametrize("kwargs, match", [
    ({"start_frame": 50, "end_frame": 40}, "not a window"),
    ({"start_frame": 0, "end_frame": 90}, "not a window"),
    ({"start_frame": -1}, "start_frame=-1"),
    ({"start_frame": 1.5}, "start_frame=1.5"),
    ({"method": "first-frames"}, "first-frames"),
    ({"method": "topk"}, "needs an embedder"),
    ({"method": "topk", "embedder": "hf:/nonexistent", "question": None}, "question"),
    ({"params": {"lam": 0.5}}, "lam"),
    ({"candidates": "every"}, "candidates='every'"),
    ({"budget": 0}, "budget=0"),
    ({"candidate_mode": "fast"}, "candidate_mode"),
])
def test_select_in_window_bad_arguments(counter_video, kwargs, match) -> None:
    from vidsel.selection import select_in_window

    kwargs = {"method": "uniform", "budget": 4, **kwargs}
    with pytest.raises(InvalidArgumentError, match=match):
        select_in_window(counter_video, **kwargs)


@pytest.mark.parametrize("method", ["codec", "not-a-method"])
def test_frame_selector_names_the_frame_selectors(method):
    """codec is a registered method but chooses patches of a whole video, not among frames."""
    with pytest.raises(InvalidArgumentError, match="not a frame selector.*mdp3"):
        FrameSelector(4, method=method)


def test_a_selector_returning_bad_positions_is_named(counter_video):
    """A plugin selector's positions are checked: out of range or repeated is an error naming
    it, not an IndexError or a silently repeated frame."""
    from vidsel.select import SELECTORS, register_selector

    for name, answer in (("bad-range", [0, 999]), ("bad-repeat", [1, 1]),
                         ("bad-float", [0.5, 1.5])):
        register_selector(name, lambda inputs, k, a=answer: np.asarray(a), needs="none")
        try:
            with pytest.raises(InvalidArgumentError, match=f"selector '{name}' returned"):
                select_frames(counter_video, k=2, method=name)
        finally:
            SELECTORS.unregister(name)
