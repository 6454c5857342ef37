"""One unit of work: run a method of :mod:`vidsel.methods` on one video for one question, as a
JSON-safe record.

Used by ``vidsel select`` directly and by ``vidsel batch`` through an executor (process pool or
Ray): :func:`run_task` is a module-level function of picklable arguments that never raises for
a bad input; it returns a failure record instead (``"status": "error"``). Every method goes
through the same call (:func:`vidsel.methods.run_method`) and every result through the same
:class:`~vidsel.results.VisualSelection` protocol: nothing here knows a method by name.

Record schema (``vidsel.batch/2``), one JSON object per line of the results file::

    schema, key, status ("ok" | "error"), path, realpath, content_id, size, mtime_ns,
    question, method, budget, parameters, params_hash, vidsel_version, host, pid, finished_at,
    timings_s {probe, select, assets, total},
    metadata   (ok: VideoMetadata.to_dict()),
    selection  (ok: kind, method, source_frames, source_timestamps_s, num_tokens, then the
                result's own fields: ``summary()`` where the result has a compact one and
                ``--per-patch`` is off, else ``to_dict()``),
    outputs    (ok, when assets were asked for: dir, frames, contact_sheet),
    error      (error: type, message; traceback for unexpected exceptions)

``key`` = SHA-256 of (real path, content id, question, parameters): what ``--resume`` uses.
Files written by the previous version (``vidsel.batch/1``: ``video`` instead of ``path``, ``k``
instead of ``budget``, and parameters keyed per method family) are still read: :meth:`SelectSpec.legacy_params_hash`
gives the hash those records carry, so ``--resume`` skips their finished work too.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import __version__
from ..deprecation import renamed_fields
from ..embed import content_id, shared_embedder, shared_embedder_loaded
from ..errors import VidselError
from ..io import VideoReader
from ..methods import Method, get_method, load_plugins, run_method
from ..results import PatchConfig, VisualSelection
from ._common import UnsafeOutputError, confined_path, safe_component, safe_write

__all__ = [
    "SCHEMA",
    "AssetSpec",
    "SelectSpec",
    "Task",
    "load_spec_embedder",
    "make_key",
    "record_path",
    "run_task",
    "select_one",
    "selection_payload",
]

logger = logging.getLogger(__name__)

SCHEMA = "vidsel.batch/2"
#: The previous schema (``video`` instead of ``path``; see :meth:`SelectSpec.legacy_params_hash`).
LEGACY_SCHEMA = "vidsel.batch/1"
#: Method options that change how a result is computed, never what it is (not in the key).
RUNTIME_OPTIONS = frozenset({"backend", "cache_dir", "pixels"})
#: Defaults of the ``vidsel.batch/1`` parameter records (see :meth:`SelectSpec.legacy_params_hash`).
_V1_DEFAULTS = {"candidate_mode": "exact", "embed_size": 384, "anchors": "adaptive"}


@renamed_fields({"k": "budget"})
@dataclass(frozen=True)
class SelectSpec:
    """Everything that decides a selection (and so the record key), plus run-time options.

    Attributes:
        method: a registered method name (:func:`vidsel.methods.available_methods`).
        budget: frame-equivalents (frames for frame methods; ``k`` before 0.2, deprecated).
        options: method options the user set, named as :func:`vidsel.methods.run_method`
            takes them (``embedder`` is a spec string, loaded once per process).
        params: ``--param`` values: a method that takes a ``params`` option gets them there,
            any other method takes them as options.
        frame_size, patch_size, merge: the model's patch geometry (decides tokens per frame).
        per_patch: records hold the result's full ``to_dict()`` (every row) instead of its
            compact ``summary()``.
        device: embedder device (``"auto"``: CUDA when visible); run-time option.
        plugins: modules to import (:func:`vidsel.methods.load_plugins`) before the method is
            looked up, in this process and in every batch worker; run-time option.
    """

    method: str = "mdp3"
    budget: int = 8
    options: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    frame_size: int = 392
    patch_size: int = 14
    merge: int = 2
    per_patch: bool = False
    device: str | None = None
    plugins: tuple[str, ...] = ()

    @property
    def entry(self) -> Method:
        return get_method(self.method)

    @property
    def geometry(self) -> PatchConfig:
        return PatchConfig.make(patch_size=self.patch_size, merge=self.merge,
                                frame_size=self.frame_size)

    @property
    def embedder(self) -> str | None:
        value = self.options.get("embedder")
        return None if value is None else str(value)

    def method_options(self) -> dict[str, Any]:
        """``options`` plus ``params`` as the method takes them (a ``params`` dict or options)."""
        out = dict(self.options)
        if self.params:
            accepted = self.entry.options
            if accepted is not None and "params" in accepted:
                out["params"] = dict(self.params)
            else:
                out.update(self.params)
        return out

    def identity(self) -> dict[str, Any]:
        """The parameters that decide the result (what ``params_hash`` covers)."""
        return {"method": self.method, "budget": self.budget,
                "geometry": {"frame_size": self.frame_size, "patch_size": self.patch_size,
                             "merge": self.merge},
                "options": {k: v for k, v in sorted(self.method_options().items())
                            if k not in RUNTIME_OPTIONS}}

    def params_hash(self) -> str:
        return _hash(self.identity())

    def legacy_params_hash(self) -> str:
        """The ``params_hash`` a ``vidsel.batch/1`` record of the same work carries.

        That version keyed patch methods by geometry and anchor policy and frame methods by
        their embedding options, with its own defaults; read-only compatibility for
        ``--resume`` on old files.
        """
        o = self.options
        d: dict[str, Any] = {"method": self.method, "k": self.budget,
                             "params": dict(self.params)}
        if self.entry.kind == "patches":
            d.update(frame_size=self.frame_size, patch_size=self.patch_size, merge=self.merge,
                     anchors=o.get("anchors", _V1_DEFAULTS["anchors"]))
        else:
            d.update(embedder=o.get("embedder"), candidates=o.get("candidates"),
                     candidate_mode=o.get("candidate_mode", _V1_DEFAULTS["candidate_mode"]),
                     embed_size=o.get("embed_size", _V1_DEFAULTS["embed_size"]))
        return _hash(d)


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AssetSpec:
    """Per-video files to write next to the results.

    Attributes:
        root: directory every file goes under (sanitised sub-folder per video), None for none.
        frames: save what the model sees (``result.images()``: frames or packed canvases).
        contact_sheet: save a contact sheet PNG.
        fmt: ``"jpg"`` or ``"png"`` for frames.
    """

    root: str | None = None
    frames: bool = False
    contact_sheet: bool = False
    fmt: str = "jpg"

    @property
    def wanted(self) -> bool:
        return self.root is not None and (self.frames or self.contact_sheet)


@dataclass(frozen=True)
class Task:
    """One video and question to process.

    Attributes:
        path: the video file as discovered / given.
        rel: a display name (path relative to the input root), used for the asset folder name.
        question: the question (None for methods that need none).
        spec: what to run.
        assets: what to write.
        content_id: precomputed content id (None: the worker computes it).
    """

    path: str
    rel: str
    question: str | None
    spec: SelectSpec
    assets: AssetSpec = field(default_factory=AssetSpec)
    content_id: str | None = None

    @property
    def realpath(self) -> str:
        return os.path.realpath(self.path)


def make_key(realpath: str, content_id: str, question: str | None, params_hash: str) -> str:
    """Record key: same video content at the same path, same question and parameters."""
    text = json.dumps([realpath, content_id, question, params_hash])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_path(record: Mapping[str, Any]) -> str | None:
    """The video of a record of any readable schema (``path``; ``video`` in ``/1``)."""
    value = record.get("path", record.get("video"))
    return None if value is None else str(value)


def file_identity(path: str) -> tuple[str, int | None, int | None]:
    """(content id, size, mtime_ns) of a file; ``("missing", None, None)`` when absent."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing", None, None
    if not os.path.isfile(path):
        return "not-a-file", st.st_size, st.st_mtime_ns
    try:
        return content_id(path), st.st_size, st.st_mtime_ns
    except OSError:
        return "unreadable", st.st_size, st.st_mtime_ns


# -- selection ---------------------------------------------------------------------------------

def load_spec_embedder(spec: SelectSpec) -> Any:
    """The spec's embedder, loaded once per process (None without one;
    :func:`vidsel.embed.shared_embedder`).

    Raises:
        InvalidArgumentError: a spec the loader refuses (e.g. an unknown open_clip model).
        ModelNotAvailableError: its weights are not available.
    """
    return None if spec.embedder is None else shared_embedder(spec.embedder, spec.device)


def selection_payload(result: VisualSelection, *, full: bool = False) -> dict[str, Any]:
    """A result in the record shape every method shares: ``kind``, ``method``,
    ``source_frames``, ``source_timestamps_s`` and ``num_tokens`` first, then the result's own
    fields (its compact ``summary()`` where it has one and ``full`` is False, else
    ``to_dict()``)."""
    summary = getattr(result, "summary", None)
    detail = summary() if callable(summary) and not full else result.to_dict()
    common = {
        "kind": result.kind,
        "method": result.method,
        "source_frames": [int(f) for f in np.asarray(result.source_frames).tolist()],
        "source_timestamps_s": [float(t) for t in
                                np.asarray(result.source_timestamps_s).tolist()],
        "num_tokens": result.num_tokens,
    }
    return {**common, **{k: v for k, v in detail.items() if k not in common}}


def select_one(path: str, question: str | None, spec: SelectSpec, *, pixels: bool = False,
               reader: VideoReader | None = None) -> tuple[dict[str, Any], VisualSelection]:
    """Run the spec on one video: (JSON-safe selection payload, the result object).

    ``pixels``: the caller will ask the result for its images (frames, contact sheet); a
    method with a ``pixels`` option then keeps them, else skips that work. ``reader``: an open
    :class:`vidsel.VideoReader` of ``path`` to reuse.
    """
    options = spec.method_options()
    if spec.embedder is not None:
        options["embedder"] = load_spec_embedder(spec)
    accepted = spec.entry.options
    if accepted is not None and "pixels" in accepted and "pixels" not in options:
        options["pixels"] = "decode" if pixels else "none"
    result = run_method(spec.method, reader if reader is not None else path,
                        question=question, budget=spec.budget, geometry=spec.geometry, **options)
    return selection_payload(result, full=spec.per_patch), result


_PIL_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}


def save_assets(result: VisualSelection, out_dir: Path, *, frames: bool, contact_sheet: bool,
                fmt: str = "jpg") -> dict[str, Any]:
    """Write a result's images (``result.images()``: frames or packed canvases) and/or contact
    sheet into ``out_dir`` (created). File names come from the result's labels (made
    file-name safe), never from user input. Returns the names written.

    Never writes through a symbolic link at a file name: such a link is refused
    (:class:`~vidsel.cli._common.UnsafeOutputError`); each file is written to a new temporary
    file that then replaces the name. When a write fails (e.g. a full disk), the files this
    call wrote are removed, and ``out_dir`` too when that leaves it empty.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {}
    done: list[Path] = []

    def save(image: Image.Image, name: str, image_format: str) -> None:
        done.append(safe_write(out_dir / name, lambda fh: image.save(fh, format=image_format)))

    try:
        if frames:
            images, labels = result.images()
            names: list[str] = []
            for j, (img, label) in enumerate(zip(images, labels)):
                name = f"{safe_component(label) if label else f'image_{j:04d}'}.{fmt}"
                if name in names:
                    name = f"{j:04d}_{name}"
                save(Image.fromarray(np.ascontiguousarray(img)), name,
                     _PIL_FORMATS.get(fmt.lower(), fmt.upper()))
                names.append(name)
            written["frames"] = names
        if contact_sheet:
            save(result.contact_sheet(), "contact_sheet.png", "PNG")
            written["contact_sheet"] = "contact_sheet.png"
    except BaseException:
        for path in done:
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only when empty: files of an earlier run stay
        raise
    return written


# -- the batch worker ----------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def base_record(task: Task) -> dict[str, Any]:
    """Header fields shared by success and failure records."""
    spec = task.spec
    cid, size, mtime = (task.content_id, None, None)
    if cid is None:
        cid, size, mtime = file_identity(task.path)
    else:
        try:
            st = os.stat(task.path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:  # gone or unreadable: the record keeps no size / mtime
            size, mtime = None, None
    phash = spec.params_hash()
    return {
        "schema": SCHEMA,
        "key": make_key(task.realpath, cid, task.question, phash),
        "status": "ok",
        "path": task.path,
        "realpath": task.realpath,
        "content_id": cid,
        "size": size,
        "mtime_ns": mtime,
        "question": task.question,
        "method": spec.method,
        "budget": spec.budget,
        "parameters": spec.identity(),
        "params_hash": phash,
        "vidsel_version": __version__,
    }


def error_info(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message"}`` plus a traceback for exceptions vidsel did not raise on purpose."""
    info: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if not isinstance(exc, VidselError):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        info["traceback"] = tb[-4000:]
    return info


def failure_record(task: Task, exc: BaseException, *, elapsed: float = 0.0) -> dict[str, Any]:
    """The record written when ``task`` failed (also used for crashed workers)."""
    rec = base_record(task)
    rec.update(status="error", error=error_info(exc), timings_s={"total": round(elapsed, 4)},
               host=socket.gethostname(), pid=os.getpid(), finished_at=_now())
    return rec


def run_task(task: Task) -> dict[str, Any]:
    """Process one task; never raises for bad input (returns a failure record instead)."""
    t0 = time.perf_counter()
    rec = base_record(task)
    timings: dict[str, float] = {}
    backend = task.spec.options.get("backend")
    try:
        load_plugins(task.spec.plugins)  # a spawned worker knows only what it imports
        if task.spec.embedder is not None and \
                not shared_embedder_loaded(task.spec.embedder, task.spec.device):
            load_spec_embedder(task.spec)  # once per process: later tasks of this worker reuse it
            timings["load_embedder"] = time.perf_counter() - t0
        tp = time.perf_counter()
        with VideoReader(task.path, **({"backend": backend} if backend else {})) as reader:
            md = reader.metadata
            t1 = time.perf_counter()
            timings["probe"] = t1 - tp
            payload, result = select_one(task.path, task.question, task.spec,
                                         pixels=task.assets.wanted, reader=reader)
            t2 = time.perf_counter()
            timings["select"] = t2 - t1
            if task.assets.wanted and task.assets.root is not None:
                sub = f"{safe_component(Path(task.rel).with_suffix('').as_posix(), max_len=60)}" \
                      f"-{rec['key'][:8]}"
                out_dir = confined_path(task.assets.root, sub)
                if out_dir.is_symlink():  # even one that points inside the assets folder
                    raise UnsafeOutputError(f"refusing to write into {str(out_dir)!r}: it is a "
                                            f"symbolic link (vidsel never writes through "
                                            f"links; remove it)")
                outputs = save_assets(result, out_dir, frames=task.assets.frames,
                                      contact_sheet=task.assets.contact_sheet,
                                      fmt=task.assets.fmt)
                rec["outputs"] = {"dir": sub, **outputs}
                timings["assets"] = time.perf_counter() - t2
        rec["metadata"] = md.summary()
        rec["selection"] = payload
    except Exception as e:  # batch contract: record the failure for this input and go on
        logger.debug("%s failed", task.path, exc_info=True)
        return failure_record(task, e, elapsed=time.perf_counter() - t0)
    timings["total"] = time.perf_counter() - t0
    rec.update(timings_s={k: round(v, 4) for k, v in timings.items()},
               host=socket.gethostname(), pid=os.getpid(), finished_at=_now())
    return rec
