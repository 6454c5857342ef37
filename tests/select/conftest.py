"""Fixtures of the selection tests: the golden MDP3 cases, random embeddings, tiny models.

Offline mode and the ``../shared`` folder (``shared`` / ``fixtures_dir``) come from
``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def golden_mdp3_cases(shared: Path) -> list[dict]:
    """The golden MDP3 cases (skips when ../shared or the file is absent)."""
    import json

    path = shared / "golden" / "mdp3" / "cases.json"
    if not path.is_file():
        pytest.skip(f"golden MDP3 cases not found at {path}")
    return list(json.loads(path.read_text())["cases"])


def unit_rows(rng: np.random.Generator, n: int, d: int, *, smooth: float = 0.0) -> np.ndarray:
    """(n, d) float64 L2-normalised random rows; ``smooth`` > 0 makes a random walk (video-like)."""
    x = rng.standard_normal((n, d))
    if smooth:
        x = np.cumsum(x * smooth, axis=0) + rng.standard_normal((1, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- tiny random models, built offline once per session ---------------------------------------

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


TINY_OPEN_CLIP = "vidsel-tiny-clip"


@pytest.fixture(scope="session")
def tiny_open_clip_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registers the open_clip config ``vidsel-tiny-clip`` and saves random weights for it."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("tiny_open_clip")
    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16,
                          "patch_size": 8},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                        "layers": 2}}
    (d / f"{TINY_OPEN_CLIP}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY_OPEN_CLIP}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_OPEN_CLIP, pretrained=None)
    ckpt = d / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    return ckpt
