"""Black bars (letterbox / pillarbox): detection, cropping, and no token spent on them.

Clips are generated here: the ``multi_scene`` synth picture (a moving box over textured
scenes) scaled into the active area of a larger black frame, with fades from / to black,
dips to black and dissolves where a test asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.io import FrameConverter, VideoReader, packet_index, write_video
from vidsel.io._borders import (
    BAND_ROWS,
    Borders,
    _line_moments,
    _luma,
    borders_of,
    detect_borders,
    resolve_crop,
)
from vidsel.io._convert import check_crop
from vidsel.synth import render_frame

#: Near-black patch (the issue's measure): mean < 20 and std < 4 on 0-255 RGB.
BLACK_MEAN, BLACK_STD = 20.0, 4.0


def near_black_share(pixels: np.ndarray) -> float:
    """Share of (N, p, p, 3) patches that are near-black."""
    px = pixels.reshape(len(pixels), -1).astype(np.float32)
    return float(((px.mean(1) < BLACK_MEAN) & (px.std(1) < BLACK_STD)).mean())


def make_letterboxed(path: Path, *, num_frames: int = 120, width: int = 320, height: int = 240,
                     bars: Sequence[int] = (32, 32, 0, 0), fade_in: int = 0,
                     fade_out: int = 0, dip: int = 0, dissolve: int = 0, n_scenes: int = 2,
                     gop: int = 30, seed: int = 0) -> Path:
    """Encode a clip whose picture sits inside black bars (top, bottom, left, right).

    ``fade_in`` / ``fade_out``: frames of a fade from / to black at the start / end; ``dip``:
    frames of a fade to black and back around each scene change; ``dissolve``: frames of a
    cross-fade between scenes instead of a hard cut.
    """
    t, b, lft, r = bars
    ch, cw = height - t - b, width - lft - r
    cuts = [round(num_frames * s / n_scenes) for s in range(1, n_scenes)]
    cache: dict = {}

    def scene(i: int, cut_frames: Sequence[int]) -> np.ndarray:
        return render_frame("multi_scene", i, num_frames=num_frames, width=cw, height=ch,
                            box=max(8, ch // 5), cut_frames=cut_frames, seed=seed,
                            _cache=cache).astype(np.float32)

    def frames():
        for i in range(num_frames):
            img = scene(i, cuts)
            gain = 1.0
            if fade_in and i < fade_in:
                gain = i / fade_in
            if fade_out and i >= num_frames - fade_out:
                gain = min(gain, (num_frames - 1 - i) / fade_out)
            for c in cuts:
                if dip and abs(i - c + 0.5) < dip:
                    gain = min(gain, abs(i - c + 0.5) / dip)
                if dissolve and c - dissolve <= i < c:
                    a = (i - (c - dissolve) + 1) / (dissolve + 1)
                    img = (1 - a) * img + a * scene(i, [cc for cc in cuts if cc != c] + [i])
            out = np.zeros((height, width, 3), np.uint8)
            out[t:t + ch, lft:lft + cw] = np.clip(np.round(img * gain), 0, 255).astype(np.uint8)
            yield out

    write_video(path, frames(), fps=30, gop=gop, bframes=2, crf=20)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("borders")
    return {
        "letterbox_fade": make_letterboxed(d / "lb_fade.mp4", fade_in=20, fade_out=15),
        "pillarbox": make_letterboxed(d / "pb.mp4", bars=(0, 0, 40, 40), fade_in=10),
        # one keyframe, and it is black: the first seconds are measured too
        "one_key": make_letterboxed(d / "one_key.mp4", bars=(24, 24, 0, 0), fade_in=20,
                                    gop=1000),
        "plain": make_letterboxed(d / "plain.mp4", bars=(0, 0, 0, 0)),
    }


def test_detect_letterbox_through_a_fade(clips):
    b = detect_borders(clips["letterbox_fade"])
    assert isinstance(b, Borders)
    assert b.crop == (32, 32, 0, 0)
    assert (b.height, b.width) == (240, 320) and b.active_hw == (176, 320)
    assert b.box == (32, 208, 0, 320) and bool(b)


def test_detect_pillarbox(clips):
    assert detect_borders(clips["pillarbox"]).crop == (0, 0, 40, 40)


def test_black_single_keyframe_reads_the_first_seconds(clips):
    b = detect_borders(clips["one_key"])
    assert b.crop == (24, 24, 0, 0)
    assert len(b.frames) > 1  # keyframe 0 (black) plus frames of the first seconds


def test_no_barsno_crop(clips):
    b = detect_borders(clips["plain"])
    assert b.crop == (0, 0, 0, 0) and not b and b.measured


def test_a_packet_index_handed_in_gives_the_same_borders(clips):
    """detect_borders(table=packet_index(path)) reads the same keyframes through the
    index (no second demux) and finds the same bars; an index of another file is refused."""
    for name in ("letterbox_fade", "one_key", "pillarbox"):
        idx = packet_index(clips[name])
        assert detect_borders(clips[name], table=idx) == detect_borders(clips[name])
    with pytest.raises(InvalidArgumentError, match="was built for"):
        detect_borders(clips["plain"], table=packet_index(clips["pillarbox"]))


def test_line_moments_equal_the_whole_frame_luma():
    """The band-by-band line statistics equal those of the whole frame's luma (bands of
    BAND_ROWS rows, a last band shorter)."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (2 * BAND_ROWS + 7, 53, 3), dtype=np.uint8)
    y = _luma(frame[None])[0].astype(np.float64)
    r_mean, r_sq, c_mean, c_sq = _line_moments(frame)
    np.testing.assert_allclose(r_mean, y.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(r_sq, (y * y).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(c_mean, y.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(c_sq, (y * y).mean(axis=0), rtol=1e-6)


def test_dark_vignette_is_not_a_bar():
    """A picture that darkens gradually to black at its edges (a vignette, a dark scene) has
    no hard edge: not cropped. A real bar next to the same picture is."""
    h, w = 120, 200
    ramp = np.clip(np.linspace(-40, 200, w), 0, 255)  # black for the first ~33 columns
    img = np.broadcast_to(ramp[None, :, None], (h, w, 3)).astype(np.uint8).copy()
    img += np.random.default_rng(0).integers(0, 3, img.shape, dtype=np.uint8)
    assert borders_of(img[None]).crop == (0, 0, 0, 0)
    barred = np.zeros((h, w + 40, 3), np.uint8)
    barred[:, 20:20 + w] = np.clip(img.astype(int) + 80, 0, 255)
    assert borders_of(barred[None]).crop == (0, 0, 20, 20)


def test_title_card_and_black_frames_do_not_shrink_the_box():
    frames = np.zeros((3, 100, 160, 3), np.uint8)
    frames[1, 45:55, 70:90] = 255  # a small title on black
    frames[2, 10:90] = 120  # the picture, between 10-px bars
    frames[2, 10:90, ::7] = 200
    assert borders_of(frames).crop == (10, 10, 0, 0)
    assert not borders_of(frames[:2]).measured  # no frame shows a picture: unknown, no crop
    assert borders_of(frames[:2]).crop == (0, 0, 0, 0)


def test_odd_bars_round_to_even():
    frame = np.zeros((1, 100, 160, 3), np.uint8)
    frame[0, 11:87] = 150
    frame[0, 11:87, ::5] = 90
    assert borders_of(frame).crop == (12, 14, 0, 0)  # 11 -> 12, 13 -> 14


def test_converter_crop_equals_slicing(clips):
    """At native size the crop is exactly a slice of the uncropped conversion; resized, it is
    what the cropped picture gives (one swscale call on the cropped planes)."""
    import av

    with av.open(str(clips["letterbox_fade"])) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 40)
    conv = FrameConverter()
    full = conv.rgb(frame, (240, 320))
    cut = conv.rgb(frame, (176, 320), crop=(32, 32, 0, 0))
    np.testing.assert_array_equal(cut, full[32:208])
    cropped_conv = FrameConverter(crop=(32, 32, 0, 0))
    np.testing.assert_array_equal(cropped_conv.rgb(frame, (176, 320)), cut)
    small = cropped_conv.rgb(frame, (56, 112))
    assert small.shape == (56, 112, 3)
    assert near_black_share(small[None, :14, :14]) == 0.0  # no bar line left


@pytest.mark.parametrize("bad", [(1, 2, 3), (-2, 0, 0, 0), (1.5, 0, 0, 0), "top", (True, 0, 0, 0)])
def test_bad_crop_values(bad):
    with pytest.raises(InvalidArgumentError, match="crop"):
        check_crop(bad)


def test_resolve_crop(clips):
    path = clips["letterbox_fade"]
    assert resolve_crop("none", path) == (0, 0, 0, 0)
    assert resolve_crop("auto", path) == (32, 32, 0, 0)
    assert resolve_crop([2, 4, 6, 8], path, display_hw=(240, 320)) == (2, 4, 6, 8)
    with pytest.raises(InvalidArgumentError, match="'auto', 'none'"):
        resolve_crop("crop", path)
    with pytest.raises(InvalidArgumentError, match="leaves nothing"):
        resolve_crop((120, 120, 0, 0), path, display_hw=(240, 320))


def test_reader_crop_equals_pass_crop(clips):
    """``VideoReader(path, crop=...)`` converts like the decode pass (reference mode)."""
    path = clips["letterbox_fade"]
    with VideoReader(path, crop=(32, 32, 0, 0)) as r:
        got = r.get_frames([5, 60], size=(112, 224))
    with VideoReader(path) as r:
        native = r.get_frames([5, 60])
    assert got.shape == (2, 112, 224, 3)
    with VideoReader(path, crop=(32, 32, 0, 0)) as r:
        np.testing.assert_array_equal(r.get_frames([5, 60]), native[:, 32:208])


# --- select_patches -----------------------------------------------------------------------------

def test_no_token_on_the_bars(clips):
    from vidsel.codec import select_patches

    path = clips["letterbox_fade"]
    sel = select_patches(path, budget_frames=8, frame_size=224)
    assert sel.crop == (32, 32, 0, 0)
    assert near_black_share(sel.pixels) <= 0.01
    before = select_patches(path, budget_frames=8, frame_size=224, crop="none")
    assert before.crop == (0, 0, 0, 0)
    assert near_black_share(before.pixels) > near_black_share(sel.pixels)
    # the reference mode re-reads the same cropped-and-resized frames through the reader
    ref = select_patches(path, budget_frames=8, frame_size=224, pixels="reader")
    np.testing.assert_array_equal(ref.positions, sel.positions)
    np.testing.assert_array_equal(ref.pixels, sel.pixels)
    assert type(sel).from_dict(sel.to_dict()).crop == sel.crop


def test_explicit_crop_and_pillarbox(clips):
    from vidsel.codec import select_patches, uniform_patches

    sel = select_patches(clips["pillarbox"], budget_frames=4, frame_size=224,
                         crop=(0, 0, 40, 40))
    auto = select_patches(clips["pillarbox"], budget_frames=4, frame_size=224)
    np.testing.assert_array_equal(sel.positions, auto.positions)
    assert near_black_share(sel.pixels) <= 0.01
    uni = uniform_patches(clips["pillarbox"], budget_frames=4, frame_size=224)
    assert uni.crop == (0, 0, 40, 40)
    with VideoReader(clips["pillarbox"], crop=(0, 0, 40, 40)) as r:
        frames = r.get_frames(uni.anchor_frames, size=(224, 224))
    p = uni.config.patch_size
    _, h, w = uni.positions[0]
    np.testing.assert_array_equal(uni.pixels[0], frames[0, h * p:(h + 1) * p, w * p:(w + 1) * p])
    with pytest.raises(InvalidArgumentError, match="crop"):
        select_patches(clips["pillarbox"], budget_frames=4, crop="yes")
