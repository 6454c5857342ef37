"""``vidsel batch`` under hostile conditions, on real processes and a real file system: the
parent killed with SIGKILL, planted symbolic links, a symlinked results file, writes that fail
(a file-size limit stands in for a full disk), and the worker count."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vidsel.cli import main

REPO = Path(__file__).resolve().parents[2]
LINUX = sys.platform.startswith("linux") and Path("/proc/self/stat").exists()


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_bytes().splitlines()]


def vidsel(*args: str, preexec: Any = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "vidsel", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid and st[0] != "Z":
                out.append(int(entry.name))
    return out


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if (st := _stat(p)) is not None and st[0] != "Z"]


@pytest.fixture()
def many_clips(good_dir: Path, tmp_path: Path) -> Path:
    """The good clips three times over under different names (15 videos of real work)."""
    d = tmp_path / "many"
    d.mkdir()
    for n in range(3):
        for clip in sorted(good_dir.iterdir()):
            shutil.copy(clip, d / f"{n}_{clip.name}")
    return d


@pytest.mark.skipif(not LINUX, reason="needs Linux /proc")
def test_workers_exit_when_the_parent_is_killed(many_clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidsel", "batch", str(many_clips), "--out", str(out),
         "--method", "codec", "--budget", "2", "--frame-size", "112", "--workers", "2",
         "--contact-sheets"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        kids: list[int] = []
        deadline = time.monotonic() + 120
        # wait until both workers run (a first record proves they took work)
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            if len(kids) >= 3 and out.exists() and out.read_bytes().count(b"\n") >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before the kill: make it longer"
        assert len(kids) >= 3, kids  # two workers and the resource tracker
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: no clean-up runs in it
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _alive(kids)
        assert not left, f"orphaned processes after the parent died: {left}"
    finally:  # never leave our own orphans behind (the workers share the batch's group)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _first_asset_dir(out: Path) -> tuple[Path, dict[str, Any]]:
    rec = records(out)[0]
    return out.parent / f"{out.stem}_assets" / rec["outputs"]["dir"], rec


def test_a_planted_symlink_is_never_written_through(good_dir: Path, tmp_path: Path) -> None:
    clip = good_dir / "clip0.mp4"
    out = tmp_path / "runs" / "r.jsonl"
    args = ["batch", str(clip), "--out", str(out), "--method", "uniform", "--budget", "2",
            "--contact-sheets", "--save-frames", "--executor", "serial"]
    assert main(args) == 0
    folder, rec = _first_asset_dir(out)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    sheet = folder / rec["outputs"]["contact_sheet"]
    sheet.unlink()
    sheet.symlink_to(victim)  # the same work again would write the sheet through the link
    assert main([*args, "--overwrite"]) == 1
    assert victim.read_bytes() == b"precious"
    assert sheet.is_symlink()
    err = records(out)[0]["error"]
    assert err["type"] == "UnsafeOutputError" and "symbolic link" in err["message"]

    # a link in place of the video's folder, even one pointing inside the assets folder
    sheet.unlink()
    inside = folder.parent / "elsewhere"
    folder.rename(inside)
    folder.symlink_to(inside)
    assert main([*args, "--overwrite"]) == 1
    assert records(out)[0]["error"]["type"] == "UnsafeOutputError"
    assert not (inside / "contact_sheet.png").exists()


def test_resume_retry_failed_keeps_a_symlinked_results_file(mixed_dir: Path,
                                                            tmp_path: Path) -> None:
    real = tmp_path / "store" / "results.jsonl"
    real.parent.mkdir()
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    args = ["batch", str(mixed_dir), "--out", str(link), "--method", "uniform", "--budget", "2",
            "--executor", "serial"]
    assert main(args) == 1  # one damaged video
    first = records(real)
    assert len(first) == 4 and sum(r["status"] == "error" for r in first) == 1
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("results.jsonl.tmp", "latest.jsonl.tmp"):  # the rewrite's temporary names
        (real.parent / name if name.startswith("results") else tmp_path / name).symlink_to(victim)
    assert main([*args, "--resume", "--retry-failed"]) == 1
    assert victim.read_text() == "precious"
    assert link.is_symlink() and link.resolve() == real.resolve()
    final = records(real)
    assert len(final) == 4  # the failure was replaced, not appended next to the old one
    assert len({r["key"] for r in final}) == 4
    assert not list(real.parent.glob("*.tmp"))


def test_json_output_is_never_written_through_a_link(clip: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    link = tmp_path / "sel.json"
    link.symlink_to(victim)
    assert main(["select", clip, "-m", "uniform", "-o", str(link)]) == 1
    assert victim.read_text() == "precious" and link.is_symlink()
    assert "UnsafeOutputError" in capsys.readouterr().err
    assert main(["select", clip, "-m", "uniform", "-o", str(tmp_path / "ok.json")]) == 0
    assert json.loads((tmp_path / "ok.json").read_text())["selection"]["method"] == "uniform"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
def test_a_failed_write_leaves_no_asset_folders(good_dir: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("clip0.mp4", "clip1.mp4", "clip2.mp4"):
        shutil.copy(good_dir / name, videos / name)
    out = tmp_path / "r.jsonl"
    limit = 24_000  # the contact sheets (~33 kB) cannot be written, small frames and records can

    def small_files() -> None:  # like a full disk: writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = vidsel("batch", str(videos), "--out", str(out), "--method", "uniform", "--budget", "2",
                  "--save-frames", "--contact-sheets", "--executor", "serial", "--no-fsync",
                  preexec=small_files)
    assert proc.returncode == 1, proc.stderr
    recs = records(out)
    assert len(recs) == 3 and all(r["status"] == "error" for r in recs)
    assert {r["error"]["type"] for r in recs} == {"OSError"}
    assets = tmp_path / "r_assets"
    left = sorted(str(p.relative_to(tmp_path)) for p in assets.rglob("*")) \
        if assets.exists() else []
    assert left == [], f"left behind after failed writes: {left}"
    assert not assets.exists()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_default_workers_are_the_cores_not_the_videos(good_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    proc = vidsel("batch", str(good_dir), "--out", str(out), "--method", "uniform", "--budget",
                  "2", preexec=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert proc.returncode == 0, proc.stderr
    assert "[process x1]" in proc.stdout  # one core: one worker, not one per video (5)
    assert len({r["pid"] for r in records(out)}) == 1


def test_a_worker_loads_the_embedder_once(good_dir: Path, tiny_clip_dir: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    proc = vidsel("batch", str(good_dir), "--out", str(out), "--method", "topk", "--budget", "2",
                  "--candidates", "8", "-Q", "a red box", "--embedder", str(tiny_clip_dir),
                  "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    recs = records(out)
    assert len(recs) == 5 and all(r["status"] == "ok" for r in recs)
    loads = [r["pid"] for r in recs if "load_embedder" in r["timings_s"]]
    pids = {r["pid"] for r in recs}
    assert sorted(loads) == sorted(pids)  # exactly one load in each worker that took work
    assert len(pids) <= 2
