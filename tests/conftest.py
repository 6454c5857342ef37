"""Suite-wide test set-up: offline mode, the shared fixtures folder, generated videos, markers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Tests never touch the network: a missing model must fail fast, not retry downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The project's ``../shared`` folder (or ``$VIDSEL_SHARED``), None when absent."""
    env = os.environ.get("VIDSEL_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


def require_shared() -> bool:
    """CI sets VIDSEL_REQUIRE_SHARED=1: then a missing ../shared fails instead of skipping, so
    golden-parity and real-clip tests cannot silently drop out of a green run."""
    return os.environ.get("VIDSEL_REQUIRE_SHARED", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if require_shared():
        pytest.fail(f"{reason} (VIDSEL_REQUIRE_SHARED is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of ``../shared``; skips the test when the folder is absent (a fresh clone)."""
    path = shared_dir()
    if path is None:
        skip_or_fail("../shared (real fixture clips, golden files) is not available")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def fixtures_dir(shared: Path) -> Path:
    path = shared / "fixtures"
    if not path.is_dir():
        skip_or_fail("../shared/fixtures is not available")
    return path


@pytest.fixture(scope="session")
def make_synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Memoised :func:`vidsel.synth.make_video`: same arguments -> same file, once per session."""
    from vidsel.synth import make_video

    root = tmp_path_factory.mktemp("synth")
    cache: dict[tuple[Any, ...], Any] = {}

    def make(suffix: str = ".mp4", **kwargs: Any) -> Any:
        key = (suffix, *sorted(kwargs.items()))
        if key not in cache:
            name = f"v{len(cache):03d}{suffix}"
            cache[key] = make_video(root / name, **kwargs)
        return cache[key]

    return make


# --- tiny random transformers models, built offline once per session ---------------------------

TINY_WORDS = [
    "[PAD]", "[UNK]", "<s>", "a", "the", "box", "cat", "dog", "moves", "left", "right", "red",
    "blue", "video", "frame", "what", "is", "in", "where", "does", "go", "answer", "with",
    "option", "letter", "scene", "cut", "camera", "pans", "</s>",
]


def _word_tokenizer(template: str, specials: list[tuple[str, int]], max_len: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(TINY_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   eos_token="</s>", bos_token="<s>", model_max_length=max_len)


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer SigLIP (d = 32) with a word-level tokenizer and image processor."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    d = tmp_path_factory.mktemp("tiny_siglip")
    eos = TINY_WORDS.index("</s>")
    cfg = SiglipConfig(
        text_config={"vocab_size": len(TINY_WORDS), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 64, "pad_token_id": 0, "eos_token_id": eos,
                     "bos_token_id": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    torch.manual_seed(0)
    SiglipModel(cfg).save_pretrained(d)
    _word_tokenizer("$A </s>", [("</s>", eos)], 64).save_pretrained(d)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer transformers CLIP (projection d = 16)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    d = tmp_path_factory.mktemp("tiny_clip")
    eos = TINY_WORDS.index("</s>")
    cfg = CLIPConfig(
        text_config={"vocab_size": len(TINY_WORDS), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 77, "bos_token_id": 2, "eos_token_id": eos,
                     "pad_token_id": 0},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(d)
    _word_tokenizer("<s> $A </s>", [("<s>", 2), ("</s>", eos)], 77).save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d



def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


# --- installs without an extra ----------------------------------------------------------------

_BLOCKER = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"blocked optional extra: {{name}}")
        return None
sys.meta_path.insert(0, _Block())
"""


@pytest.fixture(scope="session")
def run_without() -> Callable[..., Any]:
    """``run(blocked, code)``: run ``code`` in a fresh interpreter where the top-level packages
    ``blocked`` cannot be imported (an install without those extras); returns the
    ``CompletedProcess`` with text stdout / stderr."""
    import subprocess
    import sys
    import textwrap

    def run(blocked: tuple[str, ...], code: str, *, timeout: float = 300) -> Any:
        prelude = _BLOCKER.format(blocked=tuple(blocked))
        return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=timeout)

    return run


# --- a tiny random Ovis model, its processor and a small video (model + integration tests) ---

@pytest.fixture(scope="session")
def tiny_model():
    import torch

    from ovis_model import OvisModel, preset

    return OvisModel.from_config(preset("tiny"), dtype=torch.float32, seed=0)


@pytest.fixture(scope="session")
def tiny_processor(tiny_model):
    """The tiny preset's processor with small video frames (at most 64 x 96 px: 6 tokens)."""
    from ovis_model import ByteTokenizer, ImageProcessorConfig, OvisProcessor

    cfg = ImageProcessorConfig(video_min_pixels=32 * 32, video_max_pixels=64 * 96)
    return OvisProcessor(ByteTokenizer(), tiny_model.config.vit_config, image_config=cfg)


@pytest.fixture(scope="session")
def tiny_ovis_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ``tiny``-preset Ovis checkpoint with a ChatML word-level tokenizer and a
    processor config at small video sizes (stands in for /models/Ovis2.5-2B)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from ovis_model import ImageProcessorConfig, OvisModel, preset

    d = tmp_path_factory.mktemp("tiny_ovis")
    OvisModel.from_config(preset("tiny"), dtype=torch.float32, seed=0).save_pretrained(d)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "[UNK]"]
    words = ["user", "assistant", "system", "a", "the", "what", "is", "seconds", "A", "B",
             "cup", "phone", "door", "opens", "goal", "man", "holding"]
    vocab = {w: i for i, w in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                   pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                   additional_special_tokens=specials[1:5])
    fast.save_pretrained(d)
    ImageProcessorConfig(video_min_pixels=32 * 32, video_max_pixels=64 * 96).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_llava_ov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ``tiny-llava-ov2`` checkpoint (seed 0) saved in the released LLaVA-OneVision-2
    layout, with a ChatML word-level tokenizer whose every id of the 300-entry vocabulary
    decodes to a word, and a preprocessor config at small frame sizes (stands in for
    /models/LLaVA-OneVision-2-8B)."""
    import json

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from ovis_model.llava_ov2 import LlavaOneVision2Model, llava_ov2_preset

    d = tmp_path_factory.mktemp("tiny_llava_ov2")
    cfg = llava_ov2_preset("tiny-llava-ov2")
    LlavaOneVision2Model.from_config(cfg, dtype=torch.float32, seed=0).save_pretrained(d)
    specials = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "[UNK]": 3,
                "<|vision_start|>": cfg.vision_start_token_id,
                "<|vision_end|>": cfg.vision_end_token_id,
                "<|image_pad|>": cfg.image_token_id, "<|video_pad|>": cfg.video_token_id}
    vocab = dict(specials)
    free = (i for i in range(cfg.vocab_size) if i not in set(specials.values()))
    words = ["user", "assistant", "system", "the", "box", "moves", "seconds", "what", "is",
             "A", "B", "door", "opens"] + [f"w{k}" for k in range(cfg.vocab_size)]
    vocab.update(zip(words, free))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    extra = [k for k in specials if k not in ("<|endoftext|>", "<|im_end|>", "[UNK]")]
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<|endoftext|>",
                            eos_token="<|im_end|>",
                            additional_special_tokens=extra).save_pretrained(d)
    (d / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "Qwen2VLImageProcessor", "patch_size": 14, "merge_size": 2,
         "min_pixels": 28 * 28, "max_pixels": 112 * 112, "video_min_pixels": 28 * 28,
         "video_max_pixels": 56 * 84}))
    return d


@pytest.fixture(scope="session")
def tiny_onevision_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny public-format OneVision-Encoder folder (stands in for
    /models/onevision-encoder-large)."""
    import torch

    from ovis_model import VisionEncoder
    from ovis_model.onevision_encoder import config_from_onevision

    cfg = config_from_onevision({"model_type": "onevision_encoder", "hidden_size": 64,
                                 "intermediate_size": 128, "num_hidden_layers": 2,
                                 "num_attention_heads": 2, "use_head": True})
    d = tmp_path_factory.mktemp("tiny_onevision_encoder")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        VisionEncoder(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """24 frames at 8 fps, 96 x 64, a box moving over a still background."""
    from vidsel.synth import make_video

    path = tmp_path_factory.mktemp("ovis_video") / "box.mp4"
    make_video(path, scene="moving_box", num_frames=24, fps=8, width=96, height=64, gop=8)
    return path
