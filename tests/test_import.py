"""`import vidsel` (and ovis_model) work with no optional extra installed."""

from __future__ import annotations

BLOCK = ("decord", "open_clip", "flash_attn", "ray", "matplotlib", "torchcodec")


def test_import_without_optional_extras(run_without):
    res = run_without(BLOCK, """
        import vidsel, vidsel.io, vidsel.codec, vidsel.select, vidsel.embed, vidsel.synth
        import vidsel.cli
        import ovis_model
        assert vidsel.__version__
        assert "VideoReader" in vidsel.__all__
        for name in ("decord", "open_clip", "flash_attn", "ray", "matplotlib"):
            assert name not in sys.modules, name
        print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")


def test_missing_extra_fails_only_when_used(tmp_path, run_without):
    res = run_without(BLOCK, f"""
        from vidsel.synth import make_video
        from vidsel import VideoReader, MissingDependencyError
        info = make_video({str(tmp_path / "v.mp4")!r}, num_frames=5)
        try:
            VideoReader(info.path, backend="decord")
        except MissingDependencyError as e:
            assert "pip install 'vidsel[decord]'" in str(e), e
            print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")
