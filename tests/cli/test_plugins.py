"""Methods of your own reach the CLI and the batch workers: ``--plugin MODULE`` and the
``vidsel.methods`` entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PLUGIN = textwrap.dedent('''
    """A plugin: every ``step``-th frame (a test of the CLI's plugin path)."""
    import numpy as np

    import vidsel
    from vidsel.methods import register_method
    from vidsel.results import Selection


    @register_method("every-nth", description="every step-th frame from the start")
    def every_nth(path, *, question, budget, geometry, step: int = 5):
        assert isinstance(path, str)  # path-only methods get a file path, never a reader
        with vidsel.VideoReader(path) as r:
            idx = np.arange(0, len(r), step)[:budget]
            return Selection(indices=idx, timestamps_s=r.metadata.timestamps_s[idx],
                             scores=None, method="every-nth", source_fps=r.metadata.fps,
                             path=r.path, num_frames=len(r),
                             tokens_per_frame=geometry.tokens_per_frame)
''')


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("plugins")
    (d / "my_vidsel_plugin.py").write_text(PLUGIN)
    return d


def _cli(plugin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "vidsel", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env=env)


def test_select_with_a_plugin_method(plugin_dir: Path, make_synth) -> None:
    clip = make_synth(num_frames=40, width=96, height=64).path
    out = _cli(plugin_dir, "select", clip, "--plugin", "my_vidsel_plugin", "--method",
               "every-nth", "--budget", "3", "--param", "step=10", "--json")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)["selection"]
    assert rec["method"] == "every-nth" and rec["source_frames"] == [0, 10, 20]
    assert rec["num_tokens"] == 3 * 196


def test_batch_workers_import_the_plugin(plugin_dir: Path, make_synth, tmp_path: Path) -> None:
    clips = [make_synth(num_frames=30 + 5 * i, width=96, height=64).path for i in range(2)]
    out_file = tmp_path / "r.jsonl"
    out = _cli(plugin_dir, "batch", *clips, "--plugin", "my_vidsel_plugin", "--method",
               "every-nth", "--budget", "2", "--workers", "2", "--out", str(out_file), "-q")
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs), recs
    assert all(r["selection"]["source_frames"] == [0, 5] for r in recs)


def test_a_plugin_that_cannot_be_imported_is_a_usage_error(plugin_dir: Path) -> None:
    out = _cli(plugin_dir, "select", "x.mp4", "--plugin", "no_such_plugin_module",
               "--method", "uniform")
    assert out.returncode == 2
    assert "no_such_plugin_module could not be imported" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_method_without_its_plugin_names_the_choices(plugin_dir: Path) -> None:
    out = _cli(plugin_dir, "select", "x.mp4", "--method", "every-nth")
    assert out.returncode == 2 and "invalid choice: 'every-nth'" in out.stderr


def test_installed_entry_point_plugins_load_by_themselves(tmp_path: Path, make_synth) -> None:
    """A distribution declaring the module in the ``vidsel.methods`` entry-point group."""
    site = tmp_path / "site"
    dist = site / "my_vidsel_plugin_dist-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "my_vidsel_plugin_ep.py").write_text(PLUGIN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-vidsel-plugin-dist\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text("[vidsel.methods]\nevery-nth = my_vidsel_plugin_ep\n")
    clip = make_synth(num_frames=40, width=96, height=64).path
    out = _cli(site, "select", clip, "--method", "every-nth", "--budget", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["selection"]["source_frames"] == [0, 5]
