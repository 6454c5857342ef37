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
    with pytest.raises(ModelNotAvailableError, match="--local-dir") as info:
        load_embedder("hf:google/siglip-so400m-patch14-384")
    msg = str(info.value)
    # downloads were not allowed: that is what the message says, not "unset HF_HUB_OFFLINE"
    assert "VIDSEL_ALLOW_DOWNLOAD=1" in msg and "allow_download=True" in msg
    assert "HF_HUB_OFFLINE" not in msg and ".." not in msg and "'hf:DIR'" in msg
    with pytest.raises(ModelNotAvailableError, match="no model directory"):
        load_embedder(f"hf:{tmp_path}/missing")
    with pytest.raises(ModelNotAvailableError, match=r"config\.json"):
        load_embedder(str(tmp_path))
    with pytest.raises(ModelNotAvailableError,
                       match=r"open_clip weights ViT-B-32@laion2b_s34b_b79k is not available "
                             r"locally.*VIDSEL_ALLOW_DOWNLOAD=1"):
        load_embedder("open_clip:ViT-B-32@laion2b_s34b_b79k")
    with pytest.raises(ModelNotAvailableError, match="no open_clip checkpoint"):
        load_embedder(f"open_clip:ViT-B-32@{tmp_path}/nope.safetensors")
    with pytest.raises(InvalidArgumentError, match="nor a pretrained tag of open_clip 'ViT-B-32'; tags: 'openai'"):
        load_embedder("open_clip:ViT-B-32@no_such_tag")


def test_open_clip_without_weights_suggests_the_random_spec() -> None:
    with pytest.raises(InvalidArgumentError, match="needs weights") as info:
        load_embedder("open_clip:ViT-B-32")
    assert "'open_clip:ViT-B-32@random'" in str(info.value)
    assert "random_init" not in str(info.value)


def test_download_messages_fit_the_environment(monkeypatch) -> None:
    from vidsel.embed._access import download_failure

    # downloads allowed but the hub is switched off in the environment (conftest sets it)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError,
                       match=r"HF_HUB_OFFLINE=1 is set: unset HF_HUB_OFFLINE") as info:
        load_embedder("hf:google/siglip-so400m-patch14-384", allow_download=True)
    assert ".." not in str(info.value)
    # allowed, hub on, the download failed: no advice to unset a variable that is not set
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    msg = download_failure("model 'org/m'", allowed=True, err=OSError("no route to host."),
                           get_it="`hf download org/m --local-dir DIR`", use_it="'hf:DIR'")
    assert msg.startswith("could not download model 'org/m': no route to host. Check")
    assert "HF_HUB_OFFLINE" not in msg and ".." not in msg
    # VIDSEL_ALLOW_DOWNLOAD is the switch when the keyword is not given
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VIDSEL_ALLOW_DOWNLOAD", "1")
    with pytest.raises(ModelNotAvailableError, match="unset HF_HUB_OFFLINE"):
        load_embedder("hf:google/siglip-so400m-patch14-384")


_NO_NETWORK = """
import json, sys, time
from vidsel.embed import load_embedder
from vidsel.errors import VidselError
out = {}
emb = load_embedder("hf:org/tiny-siglip")
out["name"], out["fingerprint"] = emb.name, emb._weights_fingerprint()
out["dim"] = int(emb.embed_images(__import__("numpy").zeros((1, 8, 8, 3), "uint8")).shape[1])
# an open_clip tag whose weights sit in the Hugging Face cache, with its own preprocessing
import open_clip
open_clip.add_model_config(sys.argv[1])
open_clip.pretrained._PRETRAINED["vidsel-tiny-clip"] = {"tiny": {
    "url": "", "hf_hub": "org/tiny-clip/", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
    "interpolation": "bicubic", "resize_mode": "squash"}}
tag = load_embedder("open_clip:vidsel-tiny-clip@tiny")
direct = load_embedder("open_clip:vidsel-tiny-clip@" + sys.argv[2])
out["tag"] = [tag.name, list(tag.mean), tag.resize_mode,
              float(abs(tag.embed_text("a dog") - direct.embed_text("a dog")).max())]
for spec in ("siglip", "open_clip:ViT-B-32@laion2b_s34b_b79k"):
    t = time.perf_counter()
    try:
        load_embedder(spec)
    except VidselError as e:
        out[spec] = [type(e).__name__, str(e), time.perf_counter() - t]
print(json.dumps(out))
"""


def test_hub_ids_resolve_from_the_local_cache_and_never_reach_the_network(
        tiny_siglip_dir, tiny_open_clip_ckpt, tmp_path) -> None:
    """Hub on (no HF_HUB_OFFLINE), downloads not allowed: a cached hub id or open_clip tag
    loads from the cache and a missing one fails at once; not one connection is opened."""
    import json
    import os
    import shutil
    import socket
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny-siglip"
    shutil.copytree(tiny_siglip_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    clip_repo = tmp_path / "hub" / "models--org--tiny-clip"
    (clip_repo / "snapshots" / commit).mkdir(parents=True)
    shutil.copy(tiny_open_clip_ckpt, clip_repo / "snapshots" / commit)
    (clip_repo / "refs").mkdir()
    (clip_repo / "refs" / "main").write_text(commit)
    config = tiny_open_clip_ckpt.parent / f"{TINY_OPEN_CLIP}.json"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VIDSEL_ALLOW_DOWNLOAD")}
    env.update(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HOME=str(tmp_path / "hf_home"),
               HF_ENDPOINT=f"http://127.0.0.1:{server.getsockname()[1]}")
    proc = subprocess.Popen([sys.executable, "-c", _NO_NETWORK, str(config),
                             str(tiny_open_clip_ckpt)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    connections = 0
    while proc.poll() is None:
        try:
            conn, _ = server.accept()
        except OSError:  # socket.timeout
            continue
        connections += 1
        conn.close()
    out, err = proc.communicate()
    server.close()
    assert proc.returncode == 0, err
    assert connections == 0
    res = json.loads(out.strip().splitlines()[-1])
    assert res["name"] == "hf:org/tiny-siglip" and res["dim"] == 32
    assert res["fingerprint"] == f"commit={commit}"
    name, mean, resize_mode, text_diff = res["tag"]
    assert name == f"open_clip:{TINY_OPEN_CLIP}@tiny" and mean == [0.5, 0.5, 0.5]
    assert resize_mode == "squash" and text_diff < 1e-6  # the tag's weights and preprocessing
    for spec in ("siglip", "open_clip:ViT-B-32@laion2b_s34b_b79k"):
        kind, msg, seconds = res[spec]
        assert kind == "ModelNotAvailableError" and "VIDSEL_ALLOW_DOWNLOAD=1" in msg
        assert "HF_HUB_OFFLINE" not in msg and ".." not in msg
        assert seconds < 5.0  # no hub retries


@pytest.fixture(scope="module")
def pickled_siglip_dir(tiny_siglip_dir, tmp_path_factory):
    """The tiny SigLIP with its weights as pytorch_model.bin only (pickle)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    d = tmp_path_factory.mktemp("pickled") / "siglip"
    shutil.copytree(tiny_siglip_dir, d)
    torch.save(load_file(str(d / "model.safetensors")), str(d / "pytorch_model.bin"))
    (d / "model.safetensors").unlink()
    return d


def test_pickle_weights_load_only_with_an_opt_in(tiny_siglip_dir, pickled_siglip_dir,
                                                 tiny_open_clip_ckpt, tmp_path,
                                                 monkeypatch) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file

    with pytest.raises(ModelNotAvailableError,
                       match=r"only pickle-based weights \(pytorch_model\.bin\).*"
                             r"VIDSEL_ALLOW_PICKLE=1 \(Python: allow_pickle=True\)"):
        load_embedder(f"hf:{pickled_siglip_dir}")
    want = load_embedder(f"hf:{tiny_siglip_dir}").embed_images(frames(2))
    got = load_embedder(f"hf:{pickled_siglip_dir}", allow_pickle=True).embed_images(frames(2))
    np.testing.assert_allclose(got, want, atol=1e-6)
    # safetensors are preferred: next to a (different) .bin they load without the opt-in
    both = tmp_path / "both"
    shutil.copytree(tiny_siglip_dir, both)
    torch.save({k: torch.zeros_like(v) for k, v in
                load_file(str(both / "model.safetensors")).items()},
               str(both / "pytorch_model.bin"))
    np.testing.assert_allclose(load_embedder(str(both)).embed_images(frames(2)), want,
                               atol=1e-6)
    # open_clip: a .pt checkpoint is pickle too
    pt = tmp_path / "open_clip_model.pt"
    torch.save(load_file(str(tiny_open_clip_ckpt)), str(pt))
    with pytest.raises(ModelNotAvailableError, match="only pickle-based weights"):
        load_embedder(f"open_clip:{TINY_OPEN_CLIP}@{pt}")
    monkeypatch.setenv("VIDSEL_ALLOW_PICKLE", "1")
    a = load_embedder(f"open_clip:{TINY_OPEN_CLIP}@{pt}").embed_images(frames(2))
    b = load_embedder(f"open_clip:{TINY_OPEN_CLIP}@{tiny_open_clip_ckpt}").embed_images(
        frames(2))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert load_embedder(f"hf:{pickled_siglip_dir}").dim == 32


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
    return meta, np.full((n, d), 1 / np.sqrt(d), np.float32), np.arange(n), np.arange(n) / 10.0


def test_cache_write_failure_keeps_the_computed_result(tmp_path, caplog) -> None:
    from vidsel.embed import EmbeddingCache

    meta, e, i, t = _entry_args()
    # a real failure, not a mock (works as root too): the cache root lies under a file
    (tmp_path / "a_file").write_text("x")
    cache = EmbeddingCache(tmp_path / "a_file" / "cache")
    with caplog.at_level("WARNING", logger="vidsel.embed._cache"):
        entry, hit = cache.get_or_compute(meta, lambda: (e, i, t))
    assert not hit and entry.embeds.shape == (4, 3) and entry.indices.tolist() == [0, 1, 2, 3]
    assert "could not write the embedding cache entry" in caplog.text
    assert str(cache.path_for(meta)) in caplog.text


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


def test_hf_embedder_fingerprints_a_local_directory(tiny_siglip_dir) -> None:
    from vidsel.embed import _hf

    emb = _hf.HFEmbedder.from_pretrained(str(tiny_siglip_dir))
    assert emb._weights_fingerprint() == _hf._fingerprint(str(tiny_siglip_dir), None)
    assert emb.cache_key.startswith(f"hf:{tiny_siglip_dir}|")


_FORGERIES = ["two_rows", "int8", "float16", "timestamps_1e12", "rows_swapped",
              "unnormalised", "other_frames", "wrong_dim"]


@pytest.mark.parametrize("forgery", _FORGERIES)
def test_forged_cache_entries_are_recomputed_with_a_warning(tmp_path, caplog, forgery) -> None:
    """An entry stored under the right key whose tensors were altered (the content hash and
    row count re-forged to match, or not) is never used."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from vidsel.embed import EmbeddingCache
    from vidsel.embed._cache import content_sha

    n, d = 16, 8
    rng = np.random.default_rng(0)
    good = rng.standard_normal((n, d)).astype(np.float32)
    good /= np.linalg.norm(good, axis=1, keepdims=True)
    idx, ts = np.arange(0, 4 * n, 4), np.arange(0, 4 * n, 4) / 30.0
    meta = EmbeddingCache.key_material(video_id="v", model="m", indices=idx, timestamps_s=ts,
                                       decode="exact@384")
    cache = EmbeddingCache(tmp_path)
    path = cache.save(meta, good, idx, ts)
    assert cache.load(meta, timestamps_s=ts, dim=d) is not None
    tensors = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        stored = dict(f.metadata())
    rehash = True
    if forgery == "two_rows":
        tensors = {"embeds": good[:2], "indices": idx[:2], "timestamps_s": ts[:2],
                   "missing": np.zeros(0, np.int64)}
    elif forgery == "int8":
        tensors["embeds"] = (good * 100).astype(np.int8)
    elif forgery == "float16":
        tensors["embeds"] = good.astype(np.float16)
    elif forgery == "timestamps_1e12":
        tensors["timestamps_s"] = ts.copy()
        tensors["timestamps_s"][3] = 1e12
    elif forgery == "rows_swapped":  # same dtypes, shapes and metadata; the hash tells
        tensors["embeds"] = good[::-1].copy()
        rehash = False
    elif forgery == "unnormalised":
        tensors["embeds"] = good * 3
    elif forgery == "other_frames":
        tensors["indices"] = idx + 1
    else:
        tensors["embeds"] = np.ascontiguousarray(np.concatenate([good, good], axis=1) / 2**0.5)
    if rehash:
        stored.update(rows=str(len(tensors["embeds"])), dim=str(tensors["embeds"].shape[1]),
                      content_sha=content_sha(tensors))
    save_file(tensors, str(path), metadata=stored)
    with caplog.at_level("WARNING", logger="vidsel.embed._cache"):
        assert cache.load(meta, timestamps_s=ts, dim=d) is None
    assert "ignoring malformed cache entry" in caplog.text and str(path) in caplog.text
    assert "recomputed" in caplog.text
    calls = []
    entry, hit = cache.get_or_compute(meta, lambda: calls.append(1) or (good, idx, ts),
                                      candidates=idx, timestamps_s=ts, dim=d)
    assert not hit and calls == [1]
    np.testing.assert_array_equal(entry.embeds, good)
    again, hit = cache.get_or_compute(meta, lambda: pytest.fail("recomputed a valid entry"),
                                      candidates=idx, timestamps_s=ts, dim=d)
    assert hit and again.timestamps_s.tolist() == ts.tolist()


def test_cache_entry_with_undecodable_candidates_round_trips(tmp_path) -> None:
    from vidsel.embed import EmbeddingCache

    meta, e, i, t = _entry_args(n=6)
    cache = EmbeddingCache(tmp_path)
    keep = np.array([0, 2, 5])
    entry, hit = cache.get_or_compute(meta, lambda: (e[keep], i[keep], t[keep]),
                                      candidates=i, timestamps_s=t)
    assert not hit and entry.missing.tolist() == [1, 3, 4]
    back = cache.load(meta, timestamps_s=t)
    assert back is not None and back.indices.tolist() == [0, 2, 5]
    assert back.missing.tolist() == [1, 3, 4]


@pytest.mark.parametrize("spec", ["hf:/nowhere", "open_clip:ViT-B-32@random"])
def test_unknown_embedder_options_are_invalid_argument_errors(spec) -> None:
    """Refused before anything loads (no TypeError from the loader's signature)."""
    with pytest.raises(InvalidArgumentError, match=r"embedder does not take \['bogus'\]; "
                                                   r"allowed: \['allow_download', "
                                                   r"'allow_pickle', 'batch_size', 'device'"):
        load_embedder(spec, bogus=1)
