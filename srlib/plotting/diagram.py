"""Fig. 4: the schematic of the network.

Drawn from the layer table of :func:`srlib.network.describe`; returns ``(fig, ax)``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["fig4_network"]

# ----------------------------------------------------------------------------- Fig. 4

_STAGE_COLORS = {
    "input": "#eeeeee", "conv": "#cfe2f3", "res": "#d9ead3", "up": "#e4d7f5",
    "act": "#fce5cd", "bn": "#fff2cc", "output": "#eeeeee",
}


def _fmt_shape(shape) -> str:
    """``(N, C, D, H, W)`` or ``(C, D, H, W)`` as ``C × D³`` (cubes) or ``C × D×H×W``."""
    c, *spatial = shape[-4:]
    if len(set(spatial)) == 1:
        return f"{c} × {spatial[0]}³"
    return f"{c} × " + "×".join(str(s) for s in spatial)


def _fmt_count(n: int) -> str:
    return f"{n:,}".replace(",", "\u2009")  # thin space as thousands separator


def _box(ax, x, y, w, h, text, color, *, fontsize=8, stack=0, dashed=False):
    from matplotlib.patches import FancyBboxPatch

    for k in range(stack, 0, -1):  # a stack of boxes behind (repeated blocks)
        ax.add_patch(FancyBboxPatch((x + 0.07 * k, y + 0.07 * k), w, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    fc=color, ec="0.35", lw=0.8))
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="0.2", lw=1.0, ls="--" if dashed else "-"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, x0, y0, x1, y1, **kw):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "lw": 1.0, "color": "0.2",
                            "shrinkA": 0, "shrinkB": 0, **kw})


def _plus(ax, x, y, r=0.2):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, fc="white", ec="0.2", lw=1.0))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11)


def fig4_network(layers, input_shape, *, kernels=(9, 3, 3), title=None):
    """Fig. 4: schematic of the network, annotated with tensor shapes and parameter counts.

    Draws the stages of :class:`srlib.network.SRResNet3d` as listed by
    :func:`srlib.network.describe` (``leaves=False``): head (conv + PReLU), the residual
    blocks (drawn as one stack), trunk (conv + BatchNorm) with the long skip connection,
    the upsampling stages (conv → PixelShuffle3d → ReLU), the output conv and the sigmoid.
    Below it, the inside of one residual block and of one upsampling stage.

    Parameters
    ----------
    layers : sequence of srlib.network.LayerInfo
        Stage rows of :func:`srlib.network.describe` for one network (shapes as
        ``(N, C, D, H, W)``).
    input_shape : tuple of int
        ``(C, D, H, W)`` of the input described.
    kernels : tuple of int
        Kernel sizes of the head, the inner and the output convolutions (for the labels).
    title : str, optional
        Figure title.

    Returns
    -------
    tuple
        ``(fig, ax)``.
    """
    rows, body, ups, per_block, main = _main_stages(layers, input_shape, kernels)
    gap, h, y = 0.42, 1.5, 3.2
    xs, x = [], 0.0
    for item in main:
        xs.append(x)
        x += item[4] + gap
    width = x - gap
    fig, ax = plt.subplots(figsize=(max(10.0, 1.02 * width), 6.4))
    _draw_stages(ax, main, xs, gap=gap, h=h, y=y)
    _draw_details(ax, main, xs, body, ups, per_block, kernels, rows["head"].output_shape[1], y)
    ax.set_xlim(-1.6, width + 0.2)
    ax.set_ylim(-0.2, y + h + 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig, ax


def _main_stages(layers, input_shape, kernels):
    """The stage rows, the residual and upsampling rows, and the boxes of the main row."""
    rows = {r.name: r for r in layers}
    if "head" not in rows or "tail" not in rows or "trunk" not in rows:
        raise ValueError("layers must be the stage rows of srlib.network.describe(model, shape)")
    body = [r for r in layers if r.name.startswith("body.")]
    ups = [r for r in layers if r.name.startswith("upsample.")]
    kh, kb, kt = kernels
    f = rows["head"].output_shape[1]
    c_in = input_shape[0]
    per_block = body[0].parameters if body else 0

    # main row: (label, shape text, parameter text, colour, width, stack, note)
    what = "binary\nLR image" if c_in == 1 else "binary LR\nimage +\ndiffusion" if c_in == 3 else ""
    main = [(f"input\n{what}".strip(), _fmt_shape(input_shape), "", "input", 1.25, 0, "")]
    main.append((f"Conv {kh}³\n{c_in}→{f}\nPReLU", _fmt_shape(rows["head"].output_shape),
                 _fmt_count(rows["head"].parameters), "conv", 1.25, 0, "head"))
    if body:
        main.append((f"residual\nblock\n× {len(body)}", _fmt_shape(body[-1].output_shape),
                     f"{len(body)} × {_fmt_count(per_block)}", "res", 1.35,
                     min(len(body) - 1, 3), "body"))
    main.append((f"Conv {kb}³\nBN", _fmt_shape(rows["trunk"].output_shape),
                 _fmt_count(rows["trunk"].parameters), "conv", 1.1, 0, "trunk"))
    main.append(("+", "", "", "plus", 0.4, 0, ""))
    for k, r in enumerate(ups):
        used = ("all α", "α ≥ 4", "α = 8")[k]
        main.append((f"Conv {kb}³\n{f}→{8 * f}\nPixelShuffle\n3d(2), ReLU",
                     _fmt_shape(r.output_shape), _fmt_count(r.parameters), "up", 1.45, 0,
                     f"upsampling {k + 1} ({used})"))
    main.append((f"Conv {kt}³\n{f}→1", _fmt_shape(rows["tail"].output_shape),
                 _fmt_count(rows["tail"].parameters), "conv", 1.1, 0, "output conv"))
    main.append(("sigmoid", _fmt_shape(rows["output"].output_shape), "", "act", 1.1, 0,
                 "P(solid)"))
    return rows, body, ups, per_block, main


def _draw_stages(ax, main, xs, *, gap: float, h: float, y: float) -> None:
    """The main row of boxes with shapes, parameter counts and the long skip connection."""
    centre_y = y + h / 2
    for k, ((label, shape, params, color, w, stack, note), x0) in enumerate(
            zip(main, xs, strict=True)):
        if color == "plus":
            _plus(ax, x0 + w / 2, centre_y)
        else:
            _box(ax, x0, y, w, h, label, _STAGE_COLORS[color], stack=stack)
            if note:
                ax.text(x0 + w / 2, y + h + 0.12 + 0.07 * stack, note, ha="center",
                        va="bottom", fontsize=7.5, style="italic", color="0.25")
            ax.text(x0 + w / 2, y - 0.12, shape, ha="center", va="top", fontsize=7.5)
            if params:
                ax.text(x0 + w / 2, y - 0.42, params, ha="center", va="top", fontsize=7,
                        color="0.4")
        if k + 1 < len(main):
            _arrow(ax, x0 + w, centre_y, xs[k + 1] - 0.02, centre_y)
    # long skip connection: from the head's output over the body and trunk into the sum
    i_head = 1
    i_plus = [m[3] for m in main].index("plus")
    x_from = xs[i_head] + main[i_head][4] + gap / 2
    x_plus = xs[i_plus] + main[i_plus][4] / 2
    top = y + h + 0.75
    ax.plot([x_from, x_from, x_plus], [centre_y, top, top], color="0.2", lw=1.0)
    _arrow(ax, x_plus, top, x_plus, centre_y + 0.2)
    ax.text((x_from + x_plus) / 2, top + 0.08, "long skip connection", ha="center",
            va="bottom", fontsize=7.5)
    ax.text(-0.05, y - 0.42, "parameters:", ha="right", va="top", fontsize=7, color="0.4")
    ax.text(-0.05, y - 0.12, "shape (C × D³):", ha="right", va="top", fontsize=7.5)


def _draw_details(ax, main, xs, body, ups, per_block, kernels, f: int, y: float) -> None:
    """The inside of one residual block and of one upsampling stage, under the main row."""
    kb = kernels[1]
    # details: one residual block and one upsampling stage
    yd, hd = 0.35, 0.9
    cd = yd + hd / 2

    def detail(x0, items, caption):
        xk = x0
        starts = []
        for text, color, w in items:
            starts.append(xk)
            if color == "plus":
                _plus(ax, xk + w / 2, cd, r=0.17)
            else:
                _box(ax, xk, yd, w, hd, text, _STAGE_COLORS[color], fontsize=7)
            xk += w + 0.28
        for k in range(len(items) - 1):
            _arrow(ax, starts[k] + items[k][2], cd, starts[k + 1] - 0.01, cd)
        ax.text(x0 - 0.15, yd + hd + 0.55, caption, ha="left", va="bottom", fontsize=8,
                weight="bold")
        from matplotlib.patches import FancyBboxPatch

        ax.add_patch(FancyBboxPatch((x0 - 0.2, yd - 0.25), xk - 0.28 - x0 + 0.4, hd + 0.95,
                                    boxstyle="round,pad=0.02", fc="none", ec="0.5",
                                    ls=":", lw=1.0))
        return starts, xk - 0.28

    if body:
        items = [(f"Conv {kb}³", "conv", 0.75), ("BN", "bn", 0.5), ("PReLU", "act", 0.7),
                 (f"Conv {kb}³", "conv", 0.75), ("BN", "bn", 0.5), ("+", "plus", 0.34)]
        x_res = xs[2] - 0.6
        starts, _ = detail(x_res, items, f"residual block ({_fmt_count(per_block)} "
                                         "parameters, shape kept)")
        xp = starts[-1] + 0.17
        x_in = starts[0] - 0.14
        ax.plot([x_in, x_in, xp], [cd, yd + hd + 0.28, yd + hd + 0.28], color="0.2", lw=1.0)
        _arrow(ax, xp, yd + hd + 0.28, xp, cd + 0.17)
        _arrow(ax, x_in - 0.25, cd, starts[0] - 0.01, cd)
        ax.plot([xs[2] + 0.65] * 2, [y - 0.7, yd + hd + 0.85], color="0.6", lw=0.8, ls=":")
    if ups:
        r0 = ups[0]
        n, c, d, hh, ww = r0.output_shape
        conv_shape = (n, 8 * c, d // 2, hh // 2, ww // 2)
        items = [(f"Conv {kb}³\n{f}→{8 * f}", "conv", 0.95),
                 ("PixelShuffle3d(2)\n8 channels →\n2×2×2 voxels", "up", 1.55),
                 ("ReLU", "act", 0.6)]
        x_up = max(xs[main.index(next(m for m in main if m[3] == "up"))] - 0.3,
                   (x_res + 6.4) if body else 0)
        starts, _ = detail(x_up, items, "upsampling stage (×2 per axis)")
        ax.text(starts[0] + 0.95 + 0.14, cd - hd / 2 - 0.08, _fmt_shape(conv_shape),
                ha="center", va="top", fontsize=6.5)
        ax.text(starts[1] + 1.55 + 0.14, cd - hd / 2 - 0.08, _fmt_shape(r0.output_shape),
                ha="center", va="top", fontsize=6.5)
