"""transformers SigLIP / SigLIP2 / CLIP embedders (``hf:`` specs)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, ModelNotAvailableError
from ..optional import require
from ._access import (
    PICKLE_SUFFIXES,
    cached_hub_file,
    download_failure,
    downloads_allowed,
    pickle_allowed,
    pickle_refusal,
    sentence,
)
from ._base import Embedder, import_torch, unwrap_features
from ._text import PromptCleaner, head_tail_chunks

__all__ = ["DEFAULT_HF_MODEL", "HF_MODEL_TYPES", "HFEmbedder"]

logger = logging.getLogger(__name__)

#: MDP3's embedder.
DEFAULT_HF_MODEL = "google/siglip-so400m-patch14-384"
#: model types this embedder understands; siglip-style text is padded to max length and chunked
#: on raw ids exactly as MDP3 does, clip-style chunks are re-wrapped with BOS/EOS.
HF_MODEL_TYPES: tuple[str, ...] = ("siglip", "siglip2", "clip")


def _looks_like_path(s: str) -> bool:
    return s.startswith(("/", "./", "../", "~")) or Path(s).expanduser().exists()


def _weights_files(d: Path) -> tuple[list[str], list[str]]:
    """(safetensors files, pickle-based weight files) of a local checkpoint directory."""
    safe = sorted(f.name for f in d.iterdir() if f.suffix == ".safetensors")
    pickled = sorted(f.name for f in d.iterdir() if f.suffix in PICKLE_SUFFIXES
                     and f.name not in ("training_args.bin",))
    return safe, pickled


#: What a local Hugging Face model folder must hold (said when one is incomplete).
_MODEL_DIR_CONTENTS = (
    "a Hugging Face model folder must contain config.json, the weights (model.safetensors, "
    "or pytorch_model.bin with allow_pickle=True) and the tokenizer and preprocessor files "
    "(tokenizer.json / spiece.model, preprocessor_config.json); get one with "
    f"`hf download {DEFAULT_HF_MODEL} --local-dir DIR`"
)


def _check_model_dir(d: Path, src: str) -> None:
    """A local checkpoint folder has a config.json and weight files, else a plain
    :class:`ModelNotAvailableError` (transformers would complain about a missing
    ``model_type`` key instead)."""
    missing = [what for what, ok in (
        ("config.json", (d / "config.json").is_file()),
        ("weights", any(_weights_files(d))),
    ) if not ok]
    if missing:
        raise ModelNotAvailableError(
            f"model directory {src!r} has no {' and no '.join(missing)}"
            f"{' (it is empty)' if not any(d.iterdir()) else ''}: {_MODEL_DIR_CONTENTS}")


class HFEmbedder(Embedder):
    """A transformers ``SiglipModel`` / ``Siglip2Model`` / ``CLIPModel`` with its tokenizer and
    image processor. Build with :meth:`from_pretrained`.
    """

    kind = "hf"

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any, *, source: str,
                 fingerprint: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model.to(device=self.device, dtype=self.torch_dtype).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.source = source
        self.model_type = str(model.config.model_type)
        self._fingerprint = fingerprint
        tcfg = model.config.text_config
        self._max_positions = int(getattr(tcfg, "max_position_embeddings", 64))
        self._dim = int(getattr(model.config, "projection_dim", 0) or
                        getattr(tcfg, "projection_size", 0) or tcfg.hidden_size)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = DEFAULT_HF_MODEL, *, device: str = "cpu", dtype: str = "auto",
        batch_size: int = 32, max_text_tokens: int = 64,
        prompt_cleaner: PromptCleaner | None = None, revision: str | None = None,
        allow_download: bool | None = None, allow_pickle: bool | None = None,
    ) -> HFEmbedder:
        """Load from a local directory or a hub id.

        Args:
            name_or_path: a local checkpoint directory or a hub id.
            allow_download: fetch a hub id that is not in the local Hugging Face cache
                (None: only when ``VIDSEL_ALLOW_DOWNLOAD=1``). Without it nothing touches the
                network: a model missing locally fails at once.
            allow_pickle: also load pickle-based weights (``pytorch_model.bin``) when there
                are no safetensors (None: only when ``VIDSEL_ALLOW_PICKLE=1``).

        Raises:
            MissingDependencyError: torch or transformers is not installed
                (``pip install 'vidsel[embed]'``).
            ModelNotAvailableError: the weights are not local and downloads are not allowed or
                fail, or they are pickle-based and not allowed; the message says what to do.
            InvalidArgumentError: the checkpoint is not a SigLIP / SigLIP2 / CLIP model.
        """
        import_torch("the hf embedder")
        tf = require("transformers", "the hf embedder", extra="embed",
                     needs="torch and transformers")
        src = str(name_or_path)
        local = Path(src).expanduser()
        download = downloads_allowed(allow_download)
        unpickle = pickle_allowed(allow_pickle)
        hub = not local.is_dir()
        if not hub:
            src = str(local.resolve())
        elif _looks_like_path(src):
            raise ModelNotAvailableError(f"no model directory at {src!r}")
        load_from = src
        commit: str | None = None
        if hub and not download:
            # never the network unless allowed: a hub id resolves from the local cache only,
            # as its snapshot directory (even ``local_files_only`` lets the hub client call out)
            cached = cached_hub_file(src, "config.json", revision)
            if cached is None:
                raise ModelNotAvailableError(download_failure(
                    f"model {src!r}", allowed=False,
                    get_it=f"`hf download {src} --local-dir DIR`", use_it="'hf:DIR'"))
            load_from, commit = str(Path(cached).parent), Path(cached).parent.name
        if not hub:
            _check_model_dir(local, src)
        if load_from != src or not hub:
            safe, pickled = _weights_files(Path(load_from))
            if not safe and pickled and not unpickle:
                raise ModelNotAvailableError(pickle_refusal(
                    f"model {'directory ' if not hub else ''}{src!r}", ", ".join(pickled)))
        kw: dict[str, Any] = {"revision": revision} if load_from == src and hub else {}

        def unavailable(e: Exception) -> ModelNotAvailableError:
            if not hub:
                return ModelNotAvailableError(f"cannot load model {src!r}: {sentence(e)}")
            return ModelNotAvailableError(download_failure(
                f"model {src!r}", allowed=download, err=e,
                get_it=f"`hf download {src} --local-dir DIR`", use_it="'hf:DIR'"))

        try:
            config = tf.AutoConfig.from_pretrained(load_from, **kw)
        except (OSError, ValueError) as e:
            raise unavailable(e) from e
        if config.model_type not in HF_MODEL_TYPES:
            raise InvalidArgumentError(
                f"model_type={config.model_type!r} of {src!r} is not supported; choose one of "
                f"{', '.join(map(repr, HF_MODEL_TYPES))}"
            )
        probe = Embedder.__new__(cls)
        Embedder.__init__(probe, device=device, dtype=dtype)
        try:
            model = tf.AutoModel.from_pretrained(load_from, dtype=probe.torch_dtype,
                                                 use_safetensors=None if unpickle else True,
                                                 **kw)
        except (OSError, ValueError) as e:
            if hub and download and not unpickle and "safetensors" in str(e):
                raise ModelNotAvailableError(pickle_refusal(
                    f"model {src!r}", "pytorch_model.bin, no model.safetensors")) from e
            raise unavailable(e) from e
        try:
            tokenizer = tf.AutoTokenizer.from_pretrained(load_from, **kw)
            image_processor = tf.AutoImageProcessor.from_pretrained(load_from, **kw)
        except (OSError, ValueError) as e:
            raise unavailable(e) from e
        logger.info("loaded %s (%s) on %s/%s", src, config.model_type, probe.device, probe.dtype)
        return cls(model, tokenizer, image_processor, source=src,
                   fingerprint=_fingerprint(
                       src, revision, commit or getattr(config, "_commit_hash", None)),
                   device=device, dtype=dtype,
                   batch_size=batch_size, max_text_tokens=max_text_tokens,
                   prompt_cleaner=prompt_cleaner)

    @property
    def name(self) -> str:
        return f"hf:{self.source}"

    @property
    def dim(self) -> int:
        return self._dim

    def _weights_fingerprint(self) -> str:
        return self._fingerprint

    def _pixel_inputs(self, frames: list[Any]) -> dict[str, Any]:
        """The image processor's tensors for ``frames``, on the model's device (pixel values
        in its dtype)."""
        inputs = self.image_processor(images=frames, return_tensors="pt")
        kw = {k: v.to(self.device) for k, v in inputs.items()}
        kw["pixel_values"] = kw["pixel_values"].to(self.torch_dtype)
        return kw

    def _encode_pixels(self, frames: list[Any]) -> Any:
        return unwrap_features(self.model.get_image_features(**self._pixel_inputs(frames)))

    @property
    def supports_patches(self) -> bool:  # type: ignore[override]
        """SigLIP / SigLIP2 checkpoints with their attention-pooling head give patch features
        (see :meth:`_encode_patch_pixels`); CLIP ones do not."""
        tower = _vision_tower(self.model)
        return (self.model_type in ("siglip", "siglip2") and tower is not None
                and bool(getattr(tower, "use_head", False)))

    def _encode_patch_pixels(self, frames: list[Any]) -> Any:
        """Patch features through the pooling head, one patch at a time.

        SigLIP's image embedding is an attention-pooling head over the last hidden states:
        a learned probe attends to the patches, then a layer norm and an MLP (residual). A
        patch's feature here is that head's output when the probe attends to this patch
        alone (softmax weight 1): the value and output projections, then the same norm and
        MLP. So it lies in the image embedding's space (compared with text embeddings as
        frames are), and a picture of one patch gives its image embedding exactly.
        """
        if not self.supports_patches:
            return super()._encode_patch_pixels(frames)
        kw = self._pixel_inputs(frames)
        vision = self.model.vision_model
        if self.model_type == "siglip2":  # NaFlex: each picture has its own patch grid
            shapes = kw["spatial_shapes"]
            if bool((shapes != shapes[:1]).any()):  # pragma: no cover - one frame size
                raise InvalidArgumentError("embed_patches: the frames must all have one size")
            gh, gw = (int(v) for v in shapes[0])
            hidden = vision(pixel_values=kw["pixel_values"],
                            pixel_attention_mask=kw["pixel_attention_mask"],
                            spatial_shapes=shapes).last_hidden_state
        else:
            vc = self.model.config.vision_config
            _, _, h, w = kw["pixel_values"].shape
            gh, gw = h // vc.patch_size, w // vc.patch_size
            hidden = vision(pixel_values=kw["pixel_values"]).last_hidden_state
        feats = _head_per_patch(_vision_tower(self.model).head, hidden[:, : gh * gw])
        return feats.reshape(len(frames), gh, gw, -1)

    def _encode_text(self, text: str) -> Any:
        torch = import_torch()
        limit = min(self.max_text_tokens, self._max_positions)
        if self.model_type in ("siglip", "siglip2"):
            # MDP3: pad to max length, no truncation; chunk the raw ids (EOS in the last chunk)
            ids = self.tokenizer(text, padding="max_length", max_length=limit,
                                 truncation=False)["input_ids"]
            chunks = head_tail_chunks(ids, limit)
            input_ids = torch.tensor(chunks, dtype=torch.long, device=self.device)  # (c, s)
            return unwrap_features(self.model.get_text_features(input_ids=input_ids))
        # clip-style: every chunk gets its own BOS/EOS (the text tower pools at EOS)
        tok = self.tokenizer
        content = tok(text, add_special_tokens=False)["input_ids"]
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        room = max(1, limit - len(bos) - len(eos))
        rows = [bos + c + eos for c in head_tail_chunks(content, room)]
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else (eos[0] if eos else 0)
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows],
                            device=self.device)
        return unwrap_features(self.model.get_text_features(input_ids=input_ids,
                                                            attention_mask=mask))


def _vision_tower(model: Any) -> Any:
    """The vision transformer holding the pooling head (``model.vision_model``, or the one a
    ``*VisionModel`` wrapper holds), None where there is none."""
    vision = getattr(model, "vision_model", None)
    return getattr(vision, "vision_model", vision)


def _head_per_patch(head: Any, hidden: Any) -> Any:
    """(b, P, D) hidden states -> (b, P, D) outputs of SigLIP's attention-pooling ``head`` with
    the probe attending to each patch alone (see :meth:`HFEmbedder._encode_patch_pixels`)."""
    torch = import_torch()
    att = head.attention  # torch.nn.MultiheadAttention
    d = hidden.shape[-1]
    if att.in_proj_weight is not None:
        w_v = att.in_proj_weight[2 * d:]
    else:  # pragma: no cover - separate projections (key / value sizes differ from D)
        w_v = att.v_proj_weight
    b_v = att.in_proj_bias[2 * d:] if att.in_proj_bias is not None else None
    x = att.out_proj(torch.nn.functional.linear(hidden, w_v, b_v))
    return x + head.mlp(head.layernorm(x))


def _fingerprint(src: str, revision: str | None, commit: str | None = None) -> str:
    """Weights identity, part of the embedding cache key.

    A local directory: names, sizes and modification times of its weight files plus the JSON
    configs' contents (re-saved or replaced weights change it). A hub id: the resolved commit
    hash (``commit``, e.g. the config's ``_commit_hash``, else the cached snapshot's directory
    name), so moving ``main`` to new weights changes it; only when neither is known the
    requested revision name.
    """
    p = Path(src)
    if not p.is_dir():
        commit = commit or _snapshot_commit(src, revision)
        if commit:
            return f"commit={commit}"
        logger.debug("no commit hash for %s; the cache key uses the revision name", src)
        return f"rev={revision or 'main'}"
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}".encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
            else:
                h.update(f":{st.st_mtime_ns}".encode())
            h.update(b";")
    return h.hexdigest()[:16]


def _snapshot_commit(repo_id: str, revision: str | None) -> str | None:
    """Commit hash of the locally cached snapshot of ``repo_id`` (None when unknown)."""
    hit = cached_hub_file(repo_id, "config.json", revision)
    if hit is not None:  # .../snapshots/<commit>/config.json
        return Path(hit).parent.name
    return None
