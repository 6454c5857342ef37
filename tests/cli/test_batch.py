"""``vidsel batch``: discovery, record schema, failures, resume after crashes, path safety,
questions, executors (process pool, serial, Ray in a local cluster)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vidsel.cli import main
from vidsel.runs import ResultsFile, read_records

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
MIXED_OK = {"a.mp4", "b.mkv", "renamed.bin"}
#: Damaged videos (vidsel.io.probe_kind: "damaged") get failure records; an empty file or
#: random bytes named .mp4 are not videos ("not_video") and are skipped like text and images.
MIXED_FAILED = {"corrupt.mp4"}
RECORD_KEYS = {"schema", "key", "status", "path", "realpath", "content_id", "size", "mtime_ns",
               "question", "method", "budget", "parameters", "params_hash", "vidsel_version",
               "timings_s", "host", "pid", "finished_at"}
#: Fields that legitimately differ between two runs of the same work.
VOLATILE = {"timings_s", "host", "pid", "finished_at"}


def records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().splitlines(keepends=True)
    assert all(ln.endswith(b"\n") for ln in lines), "torn line in the results"
    return [json.loads(ln) for ln in lines]


def stable(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in VOLATILE}
    if "selection" in out:
        out["selection"] = {k: v for k, v in out["selection"].items() if k != "timings_s"}
    return out


def spawn_batch(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "vidsel", "batch", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_mixed_folder_records_failures_and_exit_code(mixed_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(mixed_dir), "--out", str(out), "--method", "uniform", "--budget", "4",
                 "--workers", "2"]) == 1
    recs = records(out)
    by_name = {Path(r["path"]).name: r for r in recs}
    assert set(by_name) == MIXED_OK | MIXED_FAILED  # hidden, empty, text, image, npy: skipped
    assert len(recs) == len(by_name)
    for name in MIXED_OK:
        r = by_name[name]
        assert r["status"] == "ok" and RECORD_KEYS | {"metadata", "selection"} <= set(r)
        sel = r["selection"]
        assert sel["source_frames"][0] == 0 and len(sel["source_frames"]) == 4
        assert r["metadata"]["num_frames"] == 40 and r["schema"] == "vidsel.batch/2"
        assert r["parameters"]["method"] == "uniform" and r["timings_s"]["total"] > 0
    assert by_name["corrupt.mp4"]["error"]["type"] == "CorruptVideoError"
    for name in MIXED_FAILED:
        assert RECORD_KEYS | {"error"} <= set(by_name[name])
        assert "traceback" not in by_name[name]["error"]  # vidsel errors: message only
    summary = capsys.readouterr().out
    assert "3 ok, 1 failed" in summary and "FAILED" in summary and "corrupt.mp4" in summary
    # notes.txt, still.png, data.npy, empty.mp4, garbage.mp4
    assert "5 files were not videos" in summary


def test_resume_skips_done_and_retry_failed_replaces(mixed_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    args = ["batch", str(mixed_dir), "--out", str(out), "--method", "uniform", "--budget", "3",
            "--executor", "serial"]
    assert main(args) == 1
    first = records(out)
    assert main(args) == 2  # results exist: refuse to mix runs silently
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 1  # failures from before still count
    assert "4 already done (1 of them failed)" in capsys.readouterr().out
    assert records(out) == first
    assert main([*args, "--resume", "--retry-failed"]) == 1
    again = records(out)
    assert len(again) == len(first) and len({r["key"] for r in again}) == len(first)
    assert main([*args, "--overwrite", "--budget", "2"]) == 1
    assert all(r["budget"] == 2 and r["parameters"]["budget"] == 2 and "k" not in r
               and "k" not in r["parameters"] for r in records(out))


def test_resume_drops_a_torn_last_line(good_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    args = ["batch", str(good_dir), "--out", str(out), "--method", "uniform", "--budget", "2",
            "--executor", "serial"]
    assert main(args) == 0
    recs = records(out)
    # a run killed mid-write: the last record is half there, the one before is complete
    out.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in recs[:-1])
                    + json.dumps(recs[-1]).encode()[:57])
    assert main([*args, "--resume"]) == 0
    final = records(out)
    assert sorted(r["path"] for r in final) == sorted(r["path"] for r in recs)
    assert len({r["key"] for r in final}) == len(final)


def test_changed_parameters_or_content_are_new_work(good_dir: Path, tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "in"
    shutil.copytree(good_dir, src)
    out = tmp_path / "r.jsonl"
    base = ["batch", str(src), "--out", str(out), "--method", "uniform", "--executor", "serial"]
    assert main([*base, "--budget", "2"]) == 0
    n = len(records(out))
    assert main([*base, "--budget", "3", "--resume"]) == 0  # new parameters: every video again
    assert len(records(out)) == 2 * n
    os.utime(src / "clip0.mp4")  # touched, same content: still done
    assert main([*base, "--budget", "3", "--resume"]) == 0
    assert len(records(out)) == 2 * n
    shutil.copy(good_dir / "clip1.mp4", src / "clip0.mp4")  # new content at the same path
    assert main([*base, "--budget", "3", "--resume"]) == 0
    assert len(records(out)) == 2 * n + 1


def test_kill_the_batch_mid_run_then_resume(good_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    args = [str(good_dir), "--out", str(out), "--method", "codec", "--budget", "2", "--frame-size",
            "112", "--workers", "1", "--contact-sheets", "--no-fsync"]
    proc = spawn_batch(*args)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, no clean-up
    proc.wait(timeout=30)
    done = records(out) if out.exists() else []
    assert len(done) < len(list(good_dir.iterdir())), "the kill came after the run ended"
    with out.open("ab") as fh:  # and as if the kill had hit a write
        fh.write(b'{"schema": "vidsel.batch/1", "key": "dead')
    assert main(["batch", *args, "--resume", "--workers", "2"]) == 0
    final = records(out)
    names = sorted(Path(r["path"]).name for r in final)
    assert names == sorted(p.name for p in good_dir.iterdir())  # none missing, none twice
    assert all(r["status"] == "ok" for r in final)
    assert [r["key"] for r in final[: len(done)]] == [r["key"] for r in done]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_killed_worker_loses_no_record(good_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    proc = spawn_batch(str(good_dir), "--out", str(out), "--method", "codec", "--budget", "2",
                       "--frame-size", "112", "--workers", "2", "-v")
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if kids:
            killed = kids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=120)
    assert killed is not None
    assert proc.returncode == 0, err
    assert "worker process died" in err
    final = records(out)
    assert sorted(Path(r["path"]).name for r in final) == sorted(
        p.name for p in good_dir.iterdir())
    assert all(r["status"] == "ok" for r in final)


def test_output_paths_stay_in_the_output_dir(good_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    clip = good_dir / "clip0.mp4"
    odd = work / "..sneaky..mp4"
    odd.write_bytes(clip.read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([
        "# one path per line",
        str(clip),                                          # absolute
        os.path.relpath(work / ".." / ".." / ".." / tmp_path.name / "work" / "deep" /
                        "..sneaky..mp4"),                   # '..' hops in the name
        str(odd),
    ]) + "\n")
    outdir = tmp_path / "results"
    out = outdir / "r.jsonl"
    assert main(["batch", str(listing), "--out", str(out), "--method", "uniform", "--budget", "2",
                 "--save-frames", "--contact-sheets", "--executor", "serial"]) == 0
    recs = records(out)
    assert len(recs) == 2  # the same file twice (by real path) is processed once
    root = (outdir / "r_assets").resolve()
    written = [p for p in root.rglob("*") if p.is_file()]
    assert len(written) == 2 * (2 + 1)
    for rec in recs:
        sub = root / rec["outputs"]["dir"]
        assert sub.resolve().parent == root and ".." not in rec["outputs"]["dir"]
        assert (sub / rec["outputs"]["contact_sheet"]).is_file()
    # every file created anywhere under tmp_path outside the results dir is an input
    created = {p for p in tmp_path.rglob("*") if p.is_file()} - set(outdir.rglob("*"))
    assert created == {listing, odd}


def test_confined_path_rejects_escapes(tmp_path: Path) -> None:
    from vidsel.cli._common import UsageError, confined_path, safe_component

    assert safe_component("../../etc/passwd") == "etc_passwd"
    assert safe_component("/abs/x y.mp4") == "abs_x_y.mp4"
    assert safe_component("..") == "_" and safe_component("") == "_"
    assert safe_component("a\\..\\b") == "a_b"
    root = tmp_path / "root"
    root.mkdir()
    assert confined_path(root, "../x").parent == root.resolve()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="outside"):
        confined_path(root, "link")


def test_questions_file_gives_one_record_per_question(good_dir: Path, tmp_path: Path) -> None:
    qcsv = tmp_path / "q.csv"
    qcsv.write_text('path,question\nclip0.mp4,"where is the box?"\nclip0.mp4,a red box\n'
                    "clip1,the yellow box\nmissing.mp4,ghost\n")
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(good_dir), "--out", str(out), "--questions", str(qcsv),
                 "--question", "default q", "--method", "uniform", "--budget", "2",
                 "--executor", "serial"]) == 0
    recs = records(out)
    qs = sorted((Path(r["path"]).name, r["question"]) for r in recs)
    assert ("clip0.mp4", "where is the box?") in qs and ("clip0.mp4", "a red box") in qs
    assert ("clip1.mp4", "the yellow box") in qs and ("clip2.mp4", "default q") in qs
    assert len(recs) == len(list(good_dir.iterdir())) + 1
    assert all(r["selection"].get("question") == r["question"] for r in recs)
    qjsonl = tmp_path / "q.jsonl"
    qjsonl.write_text(json.dumps({"path": "clip0.mp4", "question": "q1"}) + "\n")
    out2 = tmp_path / "r2.jsonl"
    assert main(["batch", str(good_dir / "clip0.mp4"), "--out", str(out2), "--questions",
                 str(qjsonl), "--method", "uniform", "--executor", "serial"]) == 0
    assert [r["question"] for r in records(out2)] == ["q1"]


def test_questions_file_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``path`` names the video (as everywhere in vidsel); ``video``, its old name, still works."""
    from vidsel.cli._batch import load_questions

    for head in ("path", "video"):
        q = tmp_path / f"{head}.csv"
        q.write_text(f"{head},question\nclip0.mp4,a box\n")
        assert load_questions(str(q)) == [("clip0.mp4", "a box")]
        qj = tmp_path / f"{head}.jsonl"
        qj.write_text(json.dumps({head: "clip0.mp4", "question": "a box"}) + "\n")
        assert load_questions(str(qj)) == [("clip0.mp4", "a box")]
    bad = tmp_path / "bad.csv"
    bad.write_text("clip,question\nclip0.mp4,a box\n")
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "r.jsonl"), "--questions",
                 str(bad), "--method", "uniform"]) == 2
    assert "needs columns path,question" in capsys.readouterr().err


def test_model_method_without_question_fails_per_video(good_dir: Path, tmp_path: Path,
                                                       tiny_clip_dir: Path) -> None:
    out = tmp_path / "r.jsonl"
    assert main(["batch", str(good_dir / "clip0.mp4"), str(good_dir / "clip1.mp4"), "--out",
                 str(out), "--method", "topk", "--budget", "2", "--embedder", str(tiny_clip_dir),
                 "--candidates", "8", "--executor", "serial"]) == 1
    assert {r["error"]["type"] for r in records(out)} == {"InvalidArgumentError"}


def test_a_second_writer_is_refused(good_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    with ResultsFile(out, mode="new"):
        assert main(["batch", str(good_dir), "--out", str(out), "--method", "uniform",
                     "--resume"]) == 2
    assert "another vidsel run" in capsys.readouterr().err


def test_glob_and_missing_inputs(good_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    assert main(["batch", f"{good_dir}/clip[01].mp4", str(tmp_path / "gone.mp4"), "--out",
                 str(out), "--method", "uniform", "--executor", "serial"]) == 1
    recs = records(out)
    assert sorted(Path(r["path"]).name for r in recs) == ["clip0.mp4", "clip1.mp4", "gone.mp4"]
    assert [r["error"]["type"] for r in recs if r["status"] == "error"] == ["VideoNotFoundError"]
    assert main(["batch", str(tmp_path / "nothing*"), "--out", str(tmp_path / "x.jsonl"),
                 "--method", "uniform"]) == 1


def test_ray_executor_matches_the_process_pool(mixed_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    args = [str(mixed_dir), "--method", "codec", "--budget", "2", "--frame-size", "56",
            "--workers", "2"]
    assert main(["batch", *args, "--out", str(tmp_path / "pool.jsonl")]) == 1
    assert main(["batch", *args, "--out", str(tmp_path / "ray.jsonl"), "--executor",
                 "ray"]) == 1
    pool = sorted((stable(r) for r in read_records(tmp_path / "pool.jsonl")),
                  key=lambda r: r["key"])
    ray = sorted((stable(r) for r in read_records(tmp_path / "ray.jsonl")),
                 key=lambda r: r["key"])
    assert len(pool) == 4 and pool == ray  # 3 videos + 1 damaged one
    # resumable the same way: nothing left to do
    assert main(["batch", *args, "--out", str(tmp_path / "ray.jsonl"), "--executor", "ray",
                 "--resume"]) == 1
    assert len(read_records(tmp_path / "ray.jsonl")) == 4


def test_uniform_and_codec_batch_records_have_the_same_shape(good_dir: Path,
                                                             tmp_path: Path) -> None:
    recs = {}
    for method in ("uniform", "codec"):
        out = tmp_path / f"{method}.jsonl"
        assert main(["batch", str(good_dir / "clip0.mp4"), "--out", str(out), "--method",
                     method, "--budget", "3", "--frame-size", "112", "--executor", "serial"]) == 0
        (recs[method],) = records(out)
    uni, cod = recs["uniform"], recs["codec"]
    assert set(uni) == set(cod)
    shared = ("kind", "method", "source_frames", "source_timestamps_s", "num_tokens")
    assert {k: type(uni["selection"][k]) for k in shared} == {
        k: type(cod["selection"][k]) for k in shared}
    assert (uni["selection"]["kind"], cod["selection"]["kind"]) == ("frames", "patches")
    assert uni["selection"]["num_tokens"] == cod["selection"]["num_tokens"] == 3 * 16
    assert uni["parameters"]["geometry"] == cod["parameters"]["geometry"] == {
        "frame_size": 112, "patch_size": 14, "merge": 2}


def _v1_file(clip: str, out: Path) -> list[dict[str, Any]]:
    """``tests/cli/data/batch_v1.jsonl`` (written by vidsel 0.1.0's ``vidsel batch``: a uniform
    and a codec record of this clip, k = 3, --frame-size 112) moved to this machine: path,
    content id and the key recomputed as that version did."""
    import hashlib

    from vidsel.embed import content_id

    real = os.path.realpath(clip)
    st = os.stat(real)
    cid = content_id(real)
    recs = []
    for line in (DATA / "batch_v1.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert rec["schema"] == "vidsel.batch/1" and "video" in rec and "path" not in rec
        key = json.dumps([real, cid, rec["question"], rec["params_hash"]])
        rec.update(video=clip, realpath=real, content_id=cid, size=st.st_size,
                   mtime_ns=st.st_mtime_ns, key=hashlib.sha256(key.encode()).hexdigest()[:32])
        recs.append(rec)
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return recs


def test_resume_reads_results_of_the_previous_schema(clip: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "old.jsonl"
    old = _v1_file(clip, out)
    before = out.read_bytes()
    for method in ("uniform", "codec"):
        assert main(["batch", clip, "--out", str(out), "--method", method, "--k", "3",
                     "--frame-size", "112", "--executor", "serial", "--resume"]) == 0
        assert "0 ok, 0 failed, 1 already done" in capsys.readouterr().out
    assert out.read_bytes() == before  # nothing ran again
    # other parameters are new work, written in the new schema next to the old records
    assert main(["batch", clip, "--out", str(out), "--method", "uniform", "--budget", "4",
                 "--executor", "serial", "--resume"]) == 0  # (--k: the old flag, same option)
    recs = records(out)
    assert recs[: len(old)] == old and recs[-1]["schema"] == "vidsel.batch/2"
    # a failure summary names the video of an old record too
    from vidsel.cli._work import record_path

    assert record_path(old[0]) == clip and record_path(recs[-1]) == clip


def test_discovery_follows_io_verdicts(mixed_dir: Path) -> None:
    """Which found files become inputs is io's verdict (vidsel.io.probe_kind) alone: videos
    and damaged videos are kept, everything else skipped; discovery itself opens nothing."""
    import ast

    import vidsel.cli._discover as disc
    from vidsel.io import probe_kind

    found = disc.discover([str(mixed_dir)])
    kept = {Path(v.path).name for v in found.videos}
    for path in sorted(p for p in mixed_dir.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(mixed_dir).parts)):
        kind = probe_kind(str(path))
        assert (path.name in kept) == (kind in ("video", "damaged")), (path.name, kind)
    assert kept == MIXED_OK | MIXED_FAILED
    names = {n.id for n in ast.walk(ast.parse(Path(disc.__file__).read_text()))
             if isinstance(n, ast.Name)} | {a.name for n in ast.walk(ast.parse(
                 Path(disc.__file__).read_text())) if isinstance(n, ast.ImportFrom)
                 for a in n.names}
    assert not names & {"open_container", "CorruptVideoError", "is_video"}


def test_select_spec_says_budget(tmp_path: Path) -> None:
    """``budget`` as in the API (vidsel.methods.run_method); ``k=`` still builds one."""
    from vidsel.cli._work import SelectSpec

    spec = SelectSpec(method="uniform", budget=3)
    assert spec.identity()["budget"] == 3 and "k" not in spec.identity()
    with pytest.warns(DeprecationWarning, match="SelectSpec"):
        old = SelectSpec(method="uniform", k=3)
    assert old == spec and old.params_hash() == spec.params_hash()
    with pytest.warns(DeprecationWarning):
        assert old.k == 3


def test_ctrl_c_during_the_fsync_keeps_the_finished_record(tmp_path: Path, monkeypatch) -> None:
    """The line is in the file when Ctrl-C arrives during its fsync: the record is finished
    and kept (it was rolled back, so a result the user saw in the file was lost)."""
    import vidsel.runs._jsonl as jsonl

    out = tmp_path / "r.jsonl"
    with ResultsFile(out, mode="new") as results:
        results.append({"key": "a", "status": "ok"})

        def interrupted(fd: int) -> None:  # the OS call, as Ctrl-C arriving during it
            raise KeyboardInterrupt

        monkeypatch.setattr(jsonl.os, "fsync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            results.append({"key": "b", "status": "ok"})
        assert set(results.records) == {"a", "b"}
    assert [r["key"] for r in read_records(out)] == ["a", "b"]


def test_a_failed_fsync_rolls_the_record_back(tmp_path: Path, monkeypatch) -> None:
    import vidsel.runs._jsonl as jsonl

    out = tmp_path / "r.jsonl"
    with ResultsFile(out, mode="new") as results:
        results.append({"key": "a", "status": "ok"})

        def failing(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(jsonl.os, "fsync", failing)
        with pytest.raises(OSError):
            results.append({"key": "b", "status": "ok"})
        assert set(results.records) == {"a"}
    assert [r["key"] for r in read_records(out)] == ["a"]
