"""One unit of work: select frames of one video for one question, as a JSON-safe record.

Used by ``vidsel select`` directly and by ``vidsel batch`` through an executor (process pool or
Ray): :func:`run_task` is a module-level function of picklable arguments that never raises for
a bad input; it returns a failure record instead (``"status": "error"``).

Record schema (``vidsel.batch/1``), one JSON object per line of the results file::

    schema, key, status ("ok" | "error"), video, realpath, content_id, size, mtime_ns,
    question, method, k, parameters, params_hash, vidsel_version, host, pid, finished_at,
    timings_s {probe, select, assets, total},
    metadata   (ok: VideoMetadata.to_dict()),
    selection  (ok: indices, timestamps_s, scores, method, params, ...; codec adds tokens,
                is_anchor and the PatchSelection summary under "codec"),
    outputs    (ok, when assets were asked for: dir, frames, contact_sheet),
    error      (error: type, message; traceback for unexpected exceptions)

``key`` = SHA-256 of (real path, content id, question, parameters): what ``--resume`` uses.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._common import confined_path, safe_component

__all__ = ["SCHEMA", "AssetSpec", "SelectSpec", "Task", "make_key", "run_task", "select_one"]

logger = logging.getLogger(__name__)

SCHEMA = "vidsel.batch/1"
#: Method name of codec-aware patch selection (``vidsel.codec.select_patches``); the other
#: method names come from the selector registry.
CODEC_METHOD = "codec"
FRAME_FORMATS = ("jpg", "png")


@dataclass(frozen=True)
class SelectSpec:
    """Everything that decides a selection (and so the record key), plus run-time options.

    Attributes:
        method: a registered selector name or ``"codec"``.
        k: frames to select (for ``codec``: the budget in frame-equivalents).
        embedder: embedder spec (see :func:`vidsel.embed.load_embedder`) or None.
        candidates: candidate pool (``128``, ``"fps:1"``, ``"all"``) or None (method default).
        candidate_mode: ``"exact"`` or ``"keyframe"``.
        params: selector (or ``select_patches``) keyword parameters.
        embed_size: short side candidates are decoded at before embedding.
        frame_size, patch_size, merge, anchors: codec patch geometry and anchor policy.
        per_patch: codec records list every patch position.
        backend: reader backend (run-time option, not part of the key).
        device: embedder device (``"auto"``: CUDA when visible); run-time option.
        cache_dir: frame-embedding cache directory; run-time option.
    """

    method: str = "mdp3"
    k: int = 8
    embedder: str | None = None
    candidates: int | str | None = None
    candidate_mode: str = "exact"
    params: Mapping[str, Any] = field(default_factory=dict)
    embed_size: int | None = 384
    frame_size: int = 392
    patch_size: int = 14
    merge: int = 2
    anchors: str = "adaptive"
    per_patch: bool = False
    backend: str = "pyav"
    device: str | None = None
    cache_dir: str | None = None

    def identity(self) -> dict[str, Any]:
        """The parameters that decide the result (what ``params_hash`` covers)."""
        d: dict[str, Any] = {"method": self.method, "k": self.k, "params": dict(self.params)}
        if self.method == CODEC_METHOD:
            d.update(frame_size=self.frame_size, patch_size=self.patch_size, merge=self.merge,
                     anchors=self.anchors)
        else:
            d.update(embedder=self.embedder, candidates=self.candidates,
                     candidate_mode=self.candidate_mode, embed_size=self.embed_size)
        return d

    def params_hash(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AssetSpec:
    """Per-video files to write next to the results.

    Attributes:
        root: directory every file goes under (sanitised sub-folder per video), None for none.
        frames: save the selected frames (codec: the packed canvases).
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
        video: the path as discovered / given.
        rel: a display name (path relative to the input root), used for the asset folder name.
        question: the question (None for methods that need none).
        spec: what to run.
        assets: what to write.
        content_id: precomputed content id (None: the worker computes it).
    """

    video: str
    rel: str
    question: str | None
    spec: SelectSpec
    assets: AssetSpec = field(default_factory=AssetSpec)
    content_id: str | None = None

    @property
    def realpath(self) -> str:
        return os.path.realpath(self.video)


def make_key(realpath: str, content_id: str, question: str | None, params_hash: str) -> str:
    """Record key: same video content at the same path, same question and parameters."""
    text = json.dumps([realpath, content_id, question, params_hash])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_identity(path: str) -> tuple[str, int | None, int | None]:
    """(content id, size, mtime_ns) of a file; ``("missing", None, None)`` when absent."""
    from vidsel.embed import content_id

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

_EMBEDDERS: dict[tuple[str, str | None], Any] = {}


def _embedder(spec: SelectSpec) -> Any:
    """The spec's embedder, loaded once per process."""
    if spec.embedder is None:
        return None
    device = spec.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    key = (spec.embedder, device)
    if key not in _EMBEDDERS:
        from vidsel.embed import load_embedder

        opts = {"device": device} if device else {}
        _EMBEDDERS[key] = load_embedder(spec.embedder, **opts)
    return _EMBEDDERS[key]


def codec_payload(res: Any, k: int, spec: SelectSpec) -> dict[str, Any]:
    """A codec ``PatchSelection`` in the common selection shape: contributing source frames as
    ``indices`` with their ``timestamps_s`` and token counts; the full summary under ``codec``."""
    import numpy as np

    frames, first = np.unique(res.positions[:, 0], return_index=True)
    tpf = res.tokens_per_source_frame()
    anchors = set(int(a) for a in res.anchor_frames.tolist())
    return {
        "method": CODEC_METHOD,
        "indices": [int(f) for f in frames.tolist()],
        "timestamps_s": [float(t) for t in res.timestamps[first].tolist()],
        "scores": None,
        "tokens": [int(tpf.get(int(f), 0)) for f in frames.tolist()],
        "is_anchor": [int(f) in anchors for f in frames.tolist()],
        "params": {"budget_frames": k, "frame_size": spec.frame_size,
                   "patch_size": spec.patch_size, "merge": spec.merge, "anchors": spec.anchors,
                   **dict(spec.params)},
        "num_frames": int(res.num_frames),
        "codec": res.to_dict(per_patch=spec.per_patch),
    }


def select_one(video: str, question: str | None, spec: SelectSpec, *, pixels: bool = False,
               reader: Any = None) -> tuple[dict[str, Any], Any]:
    """Run the spec on one video: (JSON-safe selection payload, the result object).

    ``pixels`` keeps codec pixels (needed for frames and contact sheets). ``reader``: an open
    :class:`vidsel.VideoReader` of ``video`` to reuse.
    """
    if spec.method == CODEC_METHOD:
        from vidsel.codec import select_patches

        res = select_patches(video, budget_frames=spec.k, patch_size=spec.patch_size,
                             merge=spec.merge, frame_size=spec.frame_size,
                             anchors=spec.anchors,  # type: ignore[arg-type]
                             pixels="decode" if pixels else "none", **dict(spec.params))
        return codec_payload(res, spec.k, spec), res
    from vidsel.selection import select_frames

    sel = select_frames(reader if reader is not None else video, question, spec.k,
                        method=spec.method, embedder=_embedder(spec), candidates=spec.candidates,
                        candidate_mode=spec.candidate_mode,  # type: ignore[arg-type]
                        cache_dir=spec.cache_dir, params=dict(spec.params),
                        embed_size=spec.embed_size, backend=spec.backend)
    return sel.to_dict(), sel


def save_assets(result: Any, out_dir: Path, *, frames: bool, contact_sheet: bool,
                fmt: str = "jpg") -> dict[str, Any]:
    """Write a result's frames and/or contact sheet into ``out_dir`` (created). File names are
    generated (frame index and time), never taken from user input. Returns the names written."""
    import numpy as np
    from PIL import Image

    from vidsel._render import patch_selection_sheet, selection_sheet

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {}
    is_codec = getattr(result, "method", None) == CODEC_METHOD or hasattr(result, "canvases")
    if frames:
        names = []
        if is_codec:
            for i, img in enumerate(result.canvases().images):
                name = f"canvas_{i:03d}.{fmt}"
                Image.fromarray(img).save(out_dir / name)
                names.append(name)
        else:
            pix = result.load_frames()
            for j, img in enumerate(pix):
                name = (f"frame_{int(result.indices[j]):06d}_"
                        f"{float(result.timestamps_s[j]):010.3f}s.{fmt}")
                Image.fromarray(np.ascontiguousarray(img)).save(out_dir / name)
                names.append(name)
        written["frames"] = names
    if contact_sheet:
        sheet = patch_selection_sheet(result) if is_codec else selection_sheet(result)
        sheet.save(out_dir / "contact_sheet.png")
        written["contact_sheet"] = "contact_sheet.png"
    return written


# -- the batch worker ----------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def base_record(task: Task) -> dict[str, Any]:
    """Header fields shared by success and failure records."""
    from vidsel import __version__

    spec = task.spec
    cid, size, mtime = (task.content_id, None, None)
    if cid is None:
        cid, size, mtime = file_identity(task.video)
    else:
        try:
            st = os.stat(task.video)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:  # gone or unreadable: the record keeps no size / mtime
            size, mtime = None, None
    phash = spec.params_hash()
    return {
        "schema": SCHEMA,
        "key": make_key(task.realpath, cid, task.question, phash),
        "status": "ok",
        "video": task.video,
        "realpath": task.realpath,
        "content_id": cid,
        "size": size,
        "mtime_ns": mtime,
        "question": task.question,
        "method": spec.method,
        "k": spec.k,
        "parameters": spec.identity(),
        "params_hash": phash,
        "vidsel_version": __version__,
    }


def error_info(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message"}`` plus a traceback for exceptions vidsel did not raise on purpose."""
    from vidsel.errors import VidselError

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
    try:
        from vidsel.io import VideoReader

        with VideoReader(task.video, backend=task.spec.backend) as reader:
            md = reader.metadata
            t1 = time.perf_counter()
            timings["probe"] = t1 - t0
            payload, result = select_one(task.video, task.question, task.spec,
                                         pixels=task.assets.wanted, reader=reader)
            t2 = time.perf_counter()
            timings["select"] = t2 - t1
            if task.assets.wanted:
                assert task.assets.root is not None
                sub = f"{safe_component(Path(task.rel).with_suffix('').as_posix(), max_len=60)}" \
                      f"-{rec['key'][:8]}"
                out_dir = confined_path(task.assets.root, sub)
                outputs = save_assets(result, out_dir, frames=task.assets.frames,
                                      contact_sheet=task.assets.contact_sheet,
                                      fmt=task.assets.fmt)
                rec["outputs"] = {"dir": sub, **outputs}
                timings["assets"] = time.perf_counter() - t2
        rec["metadata"] = md.to_dict()
        rec["selection"] = payload
    except Exception as e:  # batch contract: record the failure for this input and go on
        logger.debug("%s failed", task.video, exc_info=True)
        return failure_record(task, e, elapsed=time.perf_counter() - t0)
    timings["total"] = time.perf_counter() - t0
    rec.update(timings_s={k: round(v, 4) for k, v in timings.items()},
               host=socket.gethostname(), pid=os.getpid(), finished_at=_now())
    return rec


def task_summary(task: Task) -> dict[str, Any]:
    """A short description of a task for logs."""
    return {"video": task.video, "question": task.question, **asdict(task.spec)}
