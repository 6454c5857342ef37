"""vidsel.io._compat: what the installed PyAV can do (fresh stand-alone decoders need
``CodecContext.reorder_depth``, PyAV >= 17)."""

from __future__ import annotations

import av
import pytest

from vidsel.io._compat import fresh_decoders_supported


def test_a_real_pyav_codec_context_supports_fresh_decoders(tiny_video):
    with av.open(str(tiny_video)) as container:
        ctx = container.streams.video[0].codec_context
        assert hasattr(ctx, "reorder_depth")  # this venv's PyAV is >= 17
        assert fresh_decoders_supported(ctx) is True
    assert fresh_decoders_supported(av.CodecContext.create("h264", "r")) is True


def test_an_old_codec_context_is_refused_with_one_warning_per_process(run_without):
    """An old PyAV's codec context cannot exist in this venv: a plain object without
    ``reorder_depth`` stands in for it (a fresh interpreter, so "once per process" is real)."""
    res = run_without((), """
        import logging
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)
        logging.getLogger("vidsel").addHandler(Keep())
        from vidsel.io._compat import fresh_decoders_supported
        class OldCodecContext:  # PyAV 15 / 16: no reorder_depth
            name = "h264"
        assert [fresh_decoders_supported(OldCodecContext()) for _ in range(3)] == [False] * 3
        assert len(records) == 1, records
        assert records[0].levelno == logging.WARNING
        print(records[0].getMessage())
    """)
    assert res.returncode == 0, res.stderr
    assert "predates 17" in res.stdout and "pip install 'av>=17'" in res.stdout


@pytest.mark.parametrize("value", [None, 0])
def test_reorder_depth_present_whatever_its_value(value):
    class NewCodecContext:
        reorder_depth = value

    assert fresh_decoders_supported(NewCodecContext()) is True
