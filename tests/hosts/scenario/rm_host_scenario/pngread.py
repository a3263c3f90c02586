"""A small PNG reader for grey 8/16-bit images, independent of Qt and the plugin.

The host scenario decodes the engine's alpha with it, so a bug in the plugin's own
image conversion cannot hide itself in the comparison.
"""
import struct
import zlib


def read_grey(data):
    """(width, height, bit depth, list of sample values) of a non-interlaced grey PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, head = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
    w, h, depth, colour, _, _, interlace = head
    if colour != 0 or depth not in (8, 16) or interlace:
        raise ValueError("only non-interlaced 8/16-bit grey PNGs: %r" % (head,))
    bpp = depth // 8
    raw, stride = zlib.decompress(idat), w * bpp
    prev, out, k = bytearray(stride), [], 0
    for _ in range(h):
        f, line = raw[k], bytearray(raw[k + 1:k + 1 + stride])
        k += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if bpp == 2:
            out.extend(struct.unpack(">%dH" % w, bytes(line)))
        else:
            out.extend(line)
        prev = line
    return w, h, depth, out


def to_8bit(depth, values):
    """Nearest 8-bit value of each sample (v / 257 rounded for 16-bit)."""
    if depth == 8:
        return bytes(values)
    return bytes((2 * v + 257) // 514 for v in values)
