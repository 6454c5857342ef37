"""vidsel in lmms-eval: the model ``vidsel`` and a video sampler.

The model (``--model vidsel``) wraps **any** vidsel answerer (``ovis:DIR``, ``hf:DIR``,
``vllm:DIR``, ``py:module:function``) and chooses the frames of each request's video with
**any** vidsel method, at the answerer's geometry, exactly as ``vidsel eval`` does (equal
visual tokens per budget)::

    lmms-eval --model vidsel \\
        --model_args model=ovis:/models/Ovis2.5-2B,method=mdp3,budget=16,embedder=hf:/models/siglip \\
        --tasks videomme --batch_size 1

lmms-eval finds it through the entry point ``lmms_eval.models: vidsel =
vidsel.integrations.lmms_eval:manifest`` (lmms-eval >= 0.7); the class itself lives in
:mod:`vidsel.integrations._lmms_model`, which only lmms-eval imports. Its arguments are
documented on :class:`~vidsel.integrations._lmms_model.VidselLMM`.

:class:`VidselSampler` is a video sampler with the call shape of lmms-eval PR #900 (a
pluggable ``video_sampler``; not merged in lmms-eval 0.7.3): ``sampler.sample(ele,
question=...) -> list[int]`` for a qwen-vl-utils-style ``ele`` dict.

The model raises :class:`vidsel.errors.UnsupportedRequestError` (re-exported here) for the
request types it does not answer (``loglikelihood``, ``generate_until_multi_round``).

Importing this module does not import lmms-eval.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnsupportedRequestError
from ..optional import require
from ._lmms_sampler import VidselSampler

__all__ = ["MODEL_CLASS_PATH", "MODEL_ID", "UnsupportedRequestError", "VidselSampler",
           "manifest"]

#: The name lmms-eval knows the model by (``--model vidsel``).
MODEL_ID = "vidsel"
#: Where the lmms-eval model class lives (imported by lmms-eval only).
MODEL_CLASS_PATH = "vidsel.integrations._lmms_model.VidselLMM"


def manifest() -> Any:
    """The ``lmms_eval.models`` entry point: a ``ModelManifest`` naming the ``vidsel`` model.

    Raises:
        MissingDependencyError: lmms-eval is not installed
            (``pip install 'vidsel[lmms-eval]'``).
    """
    registry = require("lmms_eval.models.registry_v2", "the lmms-eval model 'vidsel'",
                       extra="lmms-eval", needs="lmms-eval")
    return registry.ModelManifest(model_id=MODEL_ID, simple_class_path=MODEL_CLASS_PATH)
