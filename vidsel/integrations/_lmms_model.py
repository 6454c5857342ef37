"""The lmms-eval model ``vidsel`` (:class:`VidselLMM`); imported by lmms-eval only (it
imports lmms-eval).

Each ``generate_until`` request is answered as one ``vidsel eval`` unit: its video is selected
with :func:`vidsel.eval._work.select_job` at the answerer's geometry (the same selection, cache
entry and visual tokens ``vidsel eval`` would use), turned into a
:class:`~vidsel.eval.VisualInput` with true timestamps, and sent to the answerer in batches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from .._progress import progress_bar
from .._validate import check_choice, check_positive_int
from ..embed import shared_embedder
from ..errors import InvalidArgumentError, UnsupportedRequestError, VidselError
from ..eval import (
    Answerer,
    AnswererSpec,
    CachedSelection,
    Request,
    SelectJob,
    available_answerers,
    check_model,
    default_cache_dir,
    load_answerer,
    options_for,
    route_options,
    select_job,
    visual_input,
)
from ..methods import get_method
from ._lmms_args import as_int
from .lmms_eval import MODEL_ID

__all__ = ["VidselLMM"]

logger = logging.getLogger(__name__)

#: Generation settings a vidsel answerer cannot honour (it decodes greedily): a request that
#: asks for sampling or beams is answered greedily, with one warning per setting.
_SAMPLING = ("temperature", "do_sample", "num_beams")


def _samples(key: str, value: Any) -> bool:
    """Whether ``gen_kwargs[key] = value`` asks for something other than greedy decoding."""
    if value is None:
        return False
    if key == "do_sample":
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return True
    return number > 0 if key == "temperature" else number > 1


def _parse_batch(value: Any) -> int | None:
    """lmms-eval's ``--batch_size``: ``N`` (int or text), ``auto`` / ``auto:N`` (None: the
    answerer's own ``max_batch``)."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().lower().startswith("auto"):
        return None
    try:
        number = as_int("batch_size", value)
    except InvalidArgumentError:
        raise InvalidArgumentError(f"batch_size={value!r} must be a positive integer or "
                                   f"'auto'") from None
    return check_positive_int("batch_size", number)


def _positive(name: str, value: Any) -> int:
    """A positive whole number as lmms-eval's arg parser leaves it (int, ``16.0``, text)."""
    return check_positive_int(name, as_int(name, value))


def _world_size() -> int:
    """``WORLD_SIZE`` as ``accelerate launch`` / ``torchrun`` set it (1 when unset)."""
    text = os.environ.get("WORLD_SIZE", "").strip()
    return 1 if not text else as_int("the environment variable WORLD_SIZE", text)


def _stop_strings(value: Any, where: str) -> list[str]:
    """``gen_kwargs["until"]``: a string or a list of strings (empty ones ignored)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(f"{where}: gen_kwargs['until']={value!r} must be a string "
                                   f"or a list of strings")
    return [v for v in value if v]


def truncate(text: str, until: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string (lmms-eval's convention)."""
    for stop in until:
        text = text.split(stop)[0]
    return text


class VidselLMM(lmms):
    """lmms-eval's ``--model vidsel``: any vidsel answerer, frames chosen per request by any
    vidsel method.

    ``--model_args`` (``key=value,...``; lmms-eval turns ``16`` into an int, ``true`` into a
    bool, ``0.2`` into a float):

    Args:
        model: the answerer spec (required): ``ovis:DIR``, ``hf:DIR_OR_ID``,
            ``vllm:DIR_OR_ID``, ``py:package.module:function`` (from Python also an
            :class:`~vidsel.eval.Answerer` or a callable).
        method: a vidsel method (:func:`vidsel.methods.available_methods`; default
            ``uniform``).
        budget: frame-equivalents in the model's geometry (default 16): every method costs the
            model the visual tokens of ``budget`` whole frames, as in ``vidsel eval``.
        embedder: the embedder spec of methods that score frames against the question
            (``hf:/models/siglip``).
        device: lmms-eval's ``--device``: the device of an ``ovis:`` or ``hf:`` answerer
            (``cuda:0``, ``cpu``; checked before loading). Not for ``vllm:`` models (an
            error: vLLM places the model itself; choose GPUs with ``CUDA_VISIBLE_DEVICES``
            and ``model.tensor_parallel_size=N``); ignored by ``py:`` answerers. Not the
            embedder's device (``embedder_device``).
        embedder_device: the embedder's device (default: its default).
        batch_size: requests per answerer call (lmms-eval's ``--batch_size``; ``auto``: the
            answerer's ``max_batch``). Above 1 it also raises the backend's ``max_batch``
            unless ``model.max_batch`` is given.
        max_batch_size: accepted for lmms-eval's CLI; unused.
        max_new_tokens: the generation limit when a task's ``gen_kwargs`` sets none
            (default 128).
        cache_dir: the selection cache folder (``true``: vidsel's default, the one
            ``vidsel eval`` uses; default none): a rerun, or another model of the same
            geometry, reuses selections and pixels.
        on_error: ``raise`` (default: a missing or broken video stops the run with a
            VidselError naming the file, task and document) or ``empty`` (that request is
            answered ``""`` and logged as an error: it scores as a wrong answer).
        param.NAME: a method option (``param.candidates=64``) or a selector parameter
            (``param.lam=0.2``), shared out as ``vidsel eval --param`` does.
        model.NAME: a backend option of the answerer (``model.dtype=bfloat16``,
            ``model.max_pixels=...``).

    The frames are selected for the request's context text (the task's whole prompt, with
    ``<image>`` placeholders removed): that text is both the selection query of
    question-aware methods and the prompt the answerer gets. Each request must name exactly
    one video file (``doc_to_visual`` returning one path); images, several videos or none
    raise an InvalidArgumentError. Decoding is greedy: ``gen_kwargs`` ``max_new_tokens`` and
    ``until`` are honoured, sampling settings are not (warned once).

    One process only: under ``accelerate launch`` / ``torchrun`` with several processes
    (``WORLD_SIZE`` > 1) the model refuses to start (InvalidArgumentError); batch with
    ``--batch_size``, or use ``vidsel eval --replicas`` for one replica per GPU.

    Raises:
        InvalidArgumentError: no ``model``, a bad argument, a backend option or device the
            answerer does not take, ``WORLD_SIZE`` > 1, or a method the answerer cannot take.
        MissingDependencyError, ModelNotAvailableError: the answerer or embedder cannot load.
    """

    is_simple = True

    def __init__(self, model: Any = None, method: str = "uniform", budget: Any = 16,
                 embedder: str | None = None, device: str | None = None,
                 embedder_device: str | None = None, batch_size: Any = 1,
                 max_batch_size: Any = None, max_new_tokens: Any = 128,
                 cache_dir: Any = None, on_error: str = "raise", **kwargs: Any) -> None:
        super().__init__()
        world = _world_size()
        if world > 1:
            raise InvalidArgumentError(
                f"WORLD_SIZE={world}: the lmms-eval model {MODEL_ID!r} does not support "
                f"multi-process runs yet (accelerate launch / torchrun with several "
                f"processes); run lmms-eval as one process and use --batch_size N to batch "
                f"requests, model.tensor_parallel_size=N to spread a vllm: model over "
                f"several GPUs, or `vidsel eval --replicas` for one model replica per GPU")
        if model is None:
            raise InvalidArgumentError(
                f"the lmms-eval model {MODEL_ID!r} needs model=SPEC in --model_args: "
                f"ovis:DIR, hf:DIR_OR_HUB_ID, vllm:DIR_OR_HUB_ID or py:package.module:function "
                f"(e.g. model=ovis:/models/Ovis2.5-2B,method=mdp3,budget=16,"
                f"embedder=hf:/models/siglip); backends here: "
                f"{', '.join(available_answerers())}")
        params: dict[str, Any] = {}
        model_options: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key.startswith("param.") and len(key) > 6:
                params[key[6:]] = value
            elif key.startswith("model.") and len(key) > 6:
                model_options[key[6:]] = value
            else:
                raise InvalidArgumentError(
                    f"the lmms-eval model {MODEL_ID!r} does not take {key}={value!r}; it takes "
                    f"model, method, budget, embedder, device, embedder_device, batch_size, "
                    f"max_new_tokens, cache_dir, on_error, param.NAME, model.NAME")
        self.method = str(method)
        entry = get_method(self.method)
        self.budget = _positive("budget", budget)
        self.default_max_new_tokens = _positive("max_new_tokens", max_new_tokens)
        check_choice("on_error", on_error, ("raise", "empty"))
        self.on_error = on_error
        if embedder is not None and not isinstance(embedder, str):
            raise InvalidArgumentError(f"embedder={embedder!r} must be a spec string "
                                       f"('hf:/models/siglip')")
        self._batch = _parse_batch(batch_size)
        del max_batch_size  # lmms-eval passes it to every model; "auto" batching is ours
        # the answerer's spec and options are checked before anything loads
        answerer_options = self._answerer_options(model, model_options, device)
        if cache_dir in (None, False, "", "none", "None"):
            self.cache_root: str | None = None
        elif cache_dir is True:
            self.cache_root = str(default_cache_dir())
        else:
            self.cache_root = os.fspath(os.path.expanduser(str(cache_dir)))
        routed = route_options([self.method], params)[self.method]
        self.options = options_for(self.method, routed, embedder, cache_root=self.cache_root)
        self.embedder = self.options.get("embedder")
        self.embedder_device = embedder_device
        if self.embedder is not None:  # a missing embedder fails here, not on request 1
            shared_embedder(str(self.embedder), embedder_device)
        self.answerer = load_answerer(model, **answerer_options)
        if entry.kind not in self.answerer.kinds:
            raise InvalidArgumentError(
                f"method {self.method!r} gives {entry.kind}, but {self.answerer.name} takes "
                f"{' and '.join(self.answerer.kinds)}")
        self.geometry = self.answerer.geometry()
        self._warned: set[str] = set()
        self._device_name = device
        logger.info("lmms-eval model vidsel: %s, %s @ %d frame-equivalents", self.answerer.name,
                    self.method, self.budget)

    def _answerer_options(self, model: Any, options: dict[str, Any], device: str | None
                          ) -> dict[str, Any]:
        """The backend options to load ``model`` with: ``model.NAME`` options, ``device`` and
        the batch size where the backend takes them; checked without loading anything.

        Raises:
            InvalidArgumentError: a malformed spec, an option its backend does not take, a
                CUDA device that is not there, or a device for a ``vllm:`` model (vLLM places
                the model itself).
        """
        if not isinstance(model, str):
            if isinstance(model, Answerer) and options:
                raise InvalidArgumentError("model.NAME options are for model specs, not a "
                                           "ready answerer")
            return options
        kind = AnswererSpec.parse(model).kind
        if kind == "py":  # a Python function answerer places itself
            if device is not None:
                logger.debug("device=%s is not passed to the Python answerer %s", device, model)
        elif device is not None:
            options.setdefault("device", device)
        if kind != "py" and self._batch is not None and self._batch > 1:
            options.setdefault("max_batch", self._batch)
        # unknown backend options, a missing CUDA device, a device for vLLM (which places the
        # model itself)
        check_model(model, options)
        return options

    # -- lmms-eval's model interface -----------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Requests per answerer call."""
        return self.answerer.max_batch if self._batch is None else max(
            1, min(self._batch, self.answerer.max_batch))

    @property
    def device(self) -> Any:
        """The answerer's device as a torch device (lmms-eval's distributed code asks)."""
        import torch

        name = self._device_name or getattr(self.answerer, "device", None) or "cpu"
        try:
            return torch.device(str(name))
        except (RuntimeError, TypeError, ValueError) as e:
            raise InvalidArgumentError(f"device={name!r} is not a torch device ({e})") from None

    def clean(self) -> None:
        """Release the answerer (lmms-eval calls this after the last request)."""
        self.answerer.close()
        super().clean()

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise UnsupportedRequestError(
            "the lmms-eval model 'vidsel' answers generate_until tasks only; this task asks "
            "for loglikelihood (multiple-choice scoring by likelihood): use the task's "
            "generate_until variant")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise UnsupportedRequestError(
            "the lmms-eval model 'vidsel' answers generate_until tasks only, not "
            "generate_until_multi_round")

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """One answer per request, in request order (see the class docstring).

        Raises:
            InvalidArgumentError: a request without exactly one video file, bad ``gen_kwargs``.
            VidselError subclasses: a missing or unreadable video (with ``on_error="raise"``),
                naming the file, task and document.
        """
        prepared = [self._prepare(req) for req in requests]
        out: list[str | None] = [None] * len(requests)
        entry = get_method(self.method)
        question_aware = entry.needs_question or entry.needs_embedder
        # a video's questions one after another: one selection per (video, query) in memory
        order = sorted(range(len(prepared)), key=lambda i: (prepared[i]["video"],
                                                            prepared[i]["prompt"]))
        pending: list[tuple[int, Request]] = []
        last: tuple[Any, CachedSelection | VidselError] | None = None
        with progress_bar(total=len(requests), desc="vidsel", unit="answer",
                          progress=self.rank == 0 and len(requests) > 1) as bar:
            for i in order:
                p = prepared[i]
                ident = (p["video"], p["prompt"] if question_aware else None)
                if last is None or last[0] != ident:
                    last = (ident, self._select(p, ident[1]))
                selected = last[1]
                if isinstance(selected, VidselError):  # on_error="empty"
                    out[i] = ""
                    bar.update(1)
                    continue
                request = Request(visual=visual_input(selected, p["video"]), prompt=p["prompt"],
                                  max_new_tokens=p["max_new_tokens"], item_id=p["where"])
                pending.append((i, request))
                if len(pending) >= self.batch_size:
                    self._answer(pending, prepared, out, bar.update)
                    pending = []
            if pending:
                self._answer(pending, prepared, out, bar.update)
        return [o if o is not None else "" for o in out]

    # -- the steps -----------------------------------------------------------------------------
    def _prepare(self, req: Instance) -> dict[str, Any]:
        """A request's context, video, prompt and generation settings, checked."""
        args = req.args
        if len(args) != 6:
            raise InvalidArgumentError(
                f"a generate_until request has (context, gen_kwargs, doc_to_visual, doc_id, "
                f"task, split); got {len(args)} arguments (a chat-model request?)")
        context, gen_kwargs, doc_to_visual, doc_id, task, split = args
        where = f"{task}/{split}/{doc_id}"
        if not isinstance(context, str):
            raise InvalidArgumentError(f"{where}: the context must be text, got "
                                       f"{type(context).__name__}")
        if gen_kwargs is None:
            gen_kwargs = {}
        if not isinstance(gen_kwargs, Mapping):
            raise InvalidArgumentError(
                f"{where}: gen_kwargs={gen_kwargs!r:.80} must be a dict of generation settings "
                f"(the task's generation_kwargs: until, max_new_tokens...), got "
                f"{type(gen_kwargs).__name__}")
        gen_kwargs = dict(gen_kwargs)
        try:
            doc = self.task_dict[task][split][doc_id]
        except (KeyError, IndexError, TypeError):
            raise InvalidArgumentError(
                f"{where}: no such document in the model's task_dict (lmms-eval's evaluator "
                f"fills lm.task_dict[task][split]; set it when calling generate_until "
                f"yourself)") from None
        visuals = doc_to_visual(doc)
        video = self._one_video(visuals, where)
        limit = gen_kwargs.get("max_new_tokens")
        limit = self.default_max_new_tokens if limit is None else _positive(
            f"{where}: gen_kwargs['max_new_tokens']", limit)
        for key, value in gen_kwargs.items():
            if key in _SAMPLING and _samples(key, value) and key not in self._warned:
                self._warned.add(key)
                logger.warning("%s: gen_kwargs %s=%r is not honoured: vidsel answerers decode "
                               "greedily", where, key, value)
        prompt = context.replace("<image>", "").strip()
        return {"context": context, "gen_kwargs": gen_kwargs, "video": video,
                "prompt": prompt, "max_new_tokens": limit, "where": where,
                "until": _stop_strings(gen_kwargs.get("until"), where)}

    @staticmethod
    def _one_video(visuals: Any, where: str) -> str:
        """The one video file a request names (lmms-eval gives a list of paths)."""
        if isinstance(visuals, (str, os.PathLike)):
            visuals = [visuals]
        if visuals is None or not isinstance(visuals, (list, tuple)) or not visuals:
            raise InvalidArgumentError(
                f"{where}: doc_to_visual gave no video ({visuals!r:.80}); the lmms-eval model "
                f"'vidsel' answers questions about one video file per request")
        if len(visuals) > 1:
            raise InvalidArgumentError(
                f"{where}: doc_to_visual gave {len(visuals)} visuals; the lmms-eval model "
                f"'vidsel' selects frames from one video file per request")
        (video,) = visuals
        if not isinstance(video, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"{where}: doc_to_visual gave a {type(video).__name__}, not a video path; the "
                f"lmms-eval model 'vidsel' selects frames from video files (image tasks: use "
                f"a model that takes images)")
        return os.fspath(video)

    def _select(self, p: Mapping[str, Any], question: str | None
                ) -> CachedSelection | VidselError:
        """The selection for one (video, query): ``vidsel eval``'s own select step."""
        job = SelectJob(video=p["video"], question=question, method=self.method,
                        budget=self.budget, geometry=self.geometry, options=self.options,
                        cache_root=self.cache_root, device=self.embedder_device)
        try:
            return select_job(job)
        except VidselError as e:
            logger.error("%s: cannot select frames of %s (%s: %s)", p["where"], p["video"],
                         type(e).__name__, e)
            if self.on_error == "empty":
                return e
            if hasattr(e, "add_note"):  # Python >= 3.11: the request in the traceback
                e.add_note(f"lmms-eval request {p['where']} (model 'vidsel', method "
                           f"{self.method!r}, video {p['video']})")
            raise

    def _answer(self, batch: list[tuple[int, Request]], prepared: list[dict[str, Any]],
                out: list[str | None], update: Callable[[int], None]) -> None:
        gens = self.answerer.generate([r for _, r in batch])
        if len(gens) != len(batch):
            raise InvalidArgumentError(f"{self.answerer.name} returned {len(gens)} answers "
                                       f"for {len(batch)} requests")
        for (i, _), gen in zip(batch, gens):
            p = prepared[i]
            text = truncate(gen.text, p["until"])
            out[i] = text
            self.cache_hook.add_partial("generate_until", (p["context"], p["gen_kwargs"]), text)
            update(1)
