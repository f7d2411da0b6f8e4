"""Figures are saved small enough to embed many of them in a report."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.colors as mcolors
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from vaecam.viz import curves, figures, overlays


def test_importing_the_figure_modules_leaves_the_matplotlib_backend_alone():
    code = ("import sys, matplotlib\n"
            "import vaecam.viz.curves, vaecam.viz.overlays, vaecam.viz.scatter\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n")
    env = {**os.environ, "MPLBACKEND": "svg"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _figure(noisy: bool):
    fig, ax = figures.subplots(figsize=(12, 4))
    rng = np.random.default_rng(0)
    ax.imshow(rng.random((300, 900)) if noisy else np.zeros((30, 90)), cmap="jet")
    return fig


def test_a_large_png_is_stored_with_a_palette_and_a_small_one_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "PALETTE_ABOVE_BYTES", 10**9)
    raw = figures.save(_figure(noisy=True), tmp_path / "raw.png").stat().st_size
    monkeypatch.setattr(figures, "PALETTE_ABOVE_BYTES", 50_000)
    big = figures.save(_figure(noisy=True), tmp_path / "noisy.png")
    small = figures.save(_figure(noisy=False), tmp_path / "flat.png")
    with Image.open(big) as image:
        assert image.mode == "P" and image.size == (1440, 480)
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    with Image.open(tmp_path / "raw.png") as image:
        original = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert big.stat().st_size < 0.6 * raw
    # the same figure, alike to the eye: on this worst case (pure noise through 'jet') the mean
    # colour error is about 4 of 255 and 99.9% of values are within 33; lost content gives ~100
    error = np.abs(rgb - original)
    assert error.mean() < 8 and np.percentile(error, 99.9) < 64
    with Image.open(small) as image:
        assert image.mode == "RGBA"


# --- what the figures show ----------------------------------------------------------------------


def test_overlay_uses_a_uniform_colormap_scaled_per_image_with_the_mask_as_a_contour():
    fig, ax = figures.subplots()
    attention = np.array([[1.0, 3.0], [5.0, 9.0]])
    mask = np.array([[0, 0], [0, 1]])
    heat = overlays.show_overlay(ax, np.zeros((2, 2)), attention, mask=mask)
    assert heat.get_cmap().name in ("inferno", "viridis", "magma", "cividis", "plasma")
    np.testing.assert_allclose(heat.get_array(), [[0.0, 0.25], [0.5, 1.0]])
    assert heat.get_clim() == (0, 1)
    contours = [c for c in ax.collections if c.__class__.__name__ in ("QuadContourSet",
                                                                      "PathCollection",
                                                                      "LineCollection")]
    assert contours, "the mask is drawn as a contour on the overlay"
    assert not overlays.scaled(np.full((3, 3), 7.0)).any()  # a constant map shows as 0


def test_frames_resized_to_a_square_are_shown_at_their_true_shape():
    # a 360 x 240 frame resized to 100 x 100: each pixel is shown 1.5 times as wide as tall
    assert overlays.pixel_aspect((100, 100), 1.5) == 1 / 1.5
    assert overlays.pixel_aspect((28, 28), None) == 1.0
    fig, ax = figures.subplots()
    overlays.show_overlay(ax, np.zeros((100, 100)), np.random.rand(100, 100), aspect=1.5)
    fig.draw_without_rendering()
    box = ax.get_position()
    shown = (box.width * fig.get_figwidth()) / (box.height * fig.get_figheight())
    assert abs(shown - 1.5) < 0.02, shown


def test_methods_grid_has_no_mask_column_and_one_colour_bar(tmp_path, monkeypatch):
    made = {}
    real_subplots = figures.subplots

    def spy(*args, **kwargs):
        fig, axes = real_subplots(*args, **kwargs)
        made["fig"], made["axes"] = fig, axes
        return fig, axes

    monkeypatch.setattr(overlays, "subplots", spy)
    images = torch.rand(2, 1, 8, 8)
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:5, 2:5] = True
    maps = {"recon-abs": torch.rand(2, 8, 8), "attention conv1 m1 relu": torch.rand(2, 8, 8)}
    path = overlays.methods_grid(tmp_path / "grid.png", images, masks, maps, ["a", "b"], 1.5)
    assert path.is_file()
    assert made["axes"].shape == (2, 3)  # input + one column per map, no mask column
    bars = [a for a in made["fig"].axes if a not in made["axes"].ravel()]
    assert len(bars) == 1 and overlays.SCALE_LABEL in bars[0].get_ylabel()


def _roc(n: int) -> dict:
    grid = np.linspace(0, 1, 5)
    return {name: (grid, grid ** 0.5, 0.6) for name in
            ["recon-abs", *[f"map {i}" for i in range(n)]]}


def test_roc_curves_have_distinct_colours_the_baseline_black_and_drawn_last(tmp_path,
                                                                            monkeypatch):
    made = {}
    real_subplots = figures.subplots

    def spy(*args, **kwargs):
        made["fig"], made["ax"] = real_subplots(*args, **kwargs)
        return made["fig"], made["ax"]

    monkeypatch.setattr(curves, "subplots", spy)
    long_title = "UCSD UCSDped2: pixel ROC, seed 0, one setting per map (chosen on training data)"
    curves.roc_figure(tmp_path / "roc.png", _roc(12), title=long_title)
    fig, ax = made["fig"], made["ax"]
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("chance")]
    colours = [mcolors.to_hex(line.get_color()) for line in lines]
    assert len(set(colours)) == len(colours) == 13, "no colour is used twice"
    assert lines[-1].get_label().startswith("recon-abs") and colours[-1] == "#000000"
    assert lines[-1].get_zorder() > max(line.get_zorder() for line in lines[:-1])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    axes_box = ax.get_window_extent(renderer)
    assert legend.x0 >= axes_box.x1, "the legend sits outside the axes"
    title = ax.title.get_window_extent(renderer)
    figure_box = fig.bbox
    assert title.x0 >= figure_box.x0 and title.x1 <= figure_box.x1, "the title fits"
    assert "\n" in ax.get_title()


def test_curve_styles_never_repeat_a_colour_and_line_style_pair():
    styles = curves.curve_styles([f"m{i}" for i in range(40)] + ["base"], baseline="base")
    pairs = [(mcolors.to_hex(s["color"]), s.get("ls", "-")) for s in styles.values()]
    assert len(set(pairs[:36])) == 36
    assert list(styles)[-1] == "base" and styles["base"]["color"] == "black"
