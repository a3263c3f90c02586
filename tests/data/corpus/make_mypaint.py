"""Writes mypaint_sketch.ora with MyPaint's own document model and ORA writer (MyPaint 2.0.1,
Debian's package; run with the system python3 by make_corpus.sh, no display needed).

Layers, bottom to top: MyPaint's background tile (a solid colour), two unnamed painting
layers (MyPaint reads and writes them without a name: both read as "layer"), a group
"fg" holding a painted "subject" and a hidden "sketch" layer. Every layer is painted
with real brush strokes through MyPaint's brush engine (the default brush).
"""
import math
import sys

sys.path.insert(0, "/usr/lib/mypaint")

import lib.brush  # noqa: E402
import lib.document  # noqa: E402
import lib.layer  # noqa: E402

W, H = 96, 64


def strokes(doc, layer, points, radius, colour):
    info = lib.brush.BrushInfo()
    info.load_defaults()
    info.set_base_value("radius_logarithmic", math.log(radius))
    info.set_color_rgb(colour)
    info.set_base_value("opaque", 1.0)
    info.set_base_value("hardness", 0.9)
    brush = lib.brush.Brush(info)
    for path in points:
        brush.reset()
        x0, y0 = path[0]
        layer.stroke_to(brush, x0, y0, 0.0, 0, 0, 0.1, 1.0, 0.0, 0.0)
        for x, y in path:
            layer.stroke_to(brush, x, y, 0.9, 0, 0, 0.02, 1.0, 0.0, 0.0)
        layer.stroke_to(brush, x, y, 0.0, 0, 0, 0.02, 1.0, 0.0, 0.0)


def line(x0, y0, x1, y1, n=40):
    return [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n + 1)]


def circle(cx, cy, r, n=60):
    return [(cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)) for i in range(n + 1)]


def main(out):
    doc = lib.document.Document(painting_only=True)
    doc.set_frame((0, 0, W, H), user_initiated=False)
    doc.set_frame_enabled(True, user_initiated=False)
    doc.layer_stack.set_background((230, 225, 210))
    root = doc.layer_stack
    a = lib.layer.PaintingLayer()           # unnamed: stack.xml gets no name
    b = lib.layer.PaintingLayer()
    root.append(a)
    root.append(b)
    strokes(doc, a, [line(0, 50, 96, 40), line(0, 58, 96, 52)], 3.0, (0.3, 0.5, 0.2))
    strokes(doc, b, [line(10, 5, 80, 20)], 2.0, (0.2, 0.3, 0.7))
    grp = lib.layer.LayerStack(name="fg")
    root.append(grp)
    subj = lib.layer.PaintingLayer(name="subject")
    grp.append(subj)
    strokes(doc, subj, [circle(48, 30, r) for r in (4, 8, 12, 16)], 3.0, (0.8, 0.4, 0.2))
    sketch = lib.layer.PaintingLayer(name="sketch")
    grp.append(sketch)
    strokes(doc, sketch, [line(20, 10, 76, 50)], 1.0, (0.0, 0.0, 0.0))
    sketch.visible = False
    doc.save(out)
    doc.cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
