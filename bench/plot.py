#!/usr/bin/python3
"""plot.py: busbw and latency plots from ccl-bench / mpi-bench --json files (podccl-bench/1).

usage: bench/plot.py [-c COLL]... [--in-place] [--ceiling COLL=GBPS]... [-o PREFIX] FILE.json...

For every collective in the files (or each one named with -c) it writes two PNGs:
  PREFIX-busbw-COLL.png  busbw (GB/s) against size (log2 x axis), one line per
                         (context.label, in_place), dashed horizontal lines for every
                         context.ceiling_gbps the files carry;
  PREFIX-lat-COLL.png    time (us, log y) against size for sizes <= 64 KiB.
--ceiling COLL=GBPS adds a dashed line (side-by-side.sh passes the ideal busbw from memcpy).
Only out-of-place records are drawn unless --in-place is given. Several files with the same label
(rounds of side-by-side.sh) are merged: the median over them is drawn at each size. PREFIX
defaults to the first file's name without .json. Prints the files written. Exits 1 on a malformed
file or when nothing is left to draw, 2 on a usage error.
"""

import argparse
import json
import math
import os
import statistics
import sys

SCHEMA = "podccl-bench/1"
LAT_MAX = 64 * 1024
RECORD_KEYS = {
    "collective": str,
    "size_bytes": int,
    "in_place": bool,
    "time_us": (int, float),
    "busbw_gbps": (int, float),
}


class Malformed(Exception):
    pass


def load(path):
    """Returns (context, records) of one file, or raises Malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Malformed(str(e)) from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise Malformed(f'not a {SCHEMA} file (no "schema": "{SCHEMA}")')
    ctx, recs = doc.get("context"), doc.get("records")
    if not isinstance(ctx, dict):
        raise Malformed('"context" is not an object')
    if not isinstance(recs, list):
        raise Malformed('"records" is not a list')
    ceiling = ctx.get("ceiling_gbps")
    if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, (int, float))):
        raise Malformed('"context.ceiling_gbps" is neither a number nor null')
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise Malformed(f"record {i} is not an object")
        for key, typ in RECORD_KEYS.items():
            v = r.get(key)
            # bool is an int in Python: only "in_place" may be one
            if v is None or not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
                raise Malformed(f'record {i}: "{key}" missing or of the wrong type')
        if r["size_bytes"] <= 0 or r["time_us"] < 0 or r["busbw_gbps"] < 0:
            raise Malformed(f"record {i}: size <= 0 or negative time or busbw")
    return ctx, recs


def size_label(b):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= div:
            v = b / div
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:g} {unit}"
    return f"{b:.0f} B"


def size_axis(ax, sizes):
    """log2 x axis with ticks at powers of two, at most about 10 labelled."""
    ax.set_xscale("log", base=2)
    lo = math.floor(math.log2(min(sizes)))
    hi = math.ceil(math.log2(max(sizes)))
    step = max(1, math.ceil((hi - lo + 1) / 10))
    ticks = [2.0**e for e in range(lo, hi + 1, step)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(t) for t in ticks], rotation=30, ha="right")
    ax.minorticks_off()
    ax.set_xlim(2.0**lo / 1.2, 2.0**hi * 1.2)
    ax.set_xlabel("size (bytes)")


def joined(values):
    vals = sorted({str(v) for v in values if v not in (None, "")})
    return "/".join(vals) if vals else "?"


def main():
    p = argparse.ArgumentParser(
        description="busbw and latency plots from ccl-bench/mpi-bench --json files")
    p.add_argument("files", nargs="+", metavar="FILE.json")
    p.add_argument("-c", "--collective", action="append", default=[],
                   help="only this collective (repeatable, or comma-separated)")
    p.add_argument("--in-place", action="store_true", help="draw the in-place records too")
    p.add_argument("--ceiling", action="append", default=[], metavar="COLL=GBPS",
                   help="an extra dashed ceiling (e.g. the ideal busbw) on COLL's busbw plot")
    p.add_argument("-o", "--output", metavar="PREFIX",
                   help="output PREFIX-busbw-COLL.png, PREFIX-lat-COLL.png "
                   "(default: first file without .json)")
    a = p.parse_args()
    extra = {}
    for arg in a.ceiling:
        c, _, g = arg.partition("=")
        try:
            extra.setdefault(c, []).append(float(g))
        except ValueError:
            p.error(f"--ceiling takes COLL=GBPS, not '{arg}'")

    # series[coll][(label, in_place)][size] = [(busbw, time), ...]; ctxs[coll] = contexts
    series, ctxs, order = {}, {}, []
    for path in a.files:
        try:
            ctx, recs = load(path)
        except Malformed as e:
            print(f"{sys.argv[0]}: {path}: {e}", file=sys.stderr)
            return 1
        label = ctx.get("label") or ctx.get("library") or os.path.basename(path)
        for r in recs:
            c = r["collective"]
            if c not in series:
                series[c], ctxs[c] = {}, []
                order.append(c)
            if not any(x is ctx for x in ctxs[c]):
                ctxs[c].append(ctx)
            line = series[c].setdefault((str(label), r["in_place"]), {})
            line.setdefault(r["size_bytes"], []).append((r["busbw_gbps"], r["time_us"]))

    wanted = [c for arg in a.collective for c in arg.split(",") if c]
    for c in wanted:
        if c not in series:
            print(f"{sys.argv[0]}: no records of collective '{c}' in the files", file=sys.stderr)
            return 1
    colls = wanted or order
    if not colls:
        print(f"{sys.argv[0]}: the files hold no records", file=sys.stderr)
        return 1

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        print(f"{sys.argv[0]}: matplotlib is missing (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return 1

    prefix = a.output
    if not prefix:
        prefix = a.files[0][:-5] if a.files[0].endswith(".json") else a.files[0]
    written = []
    for c in colls:
        # Out-of-place lines by default; a label that has only in-place records (torch's
        # all_reduce works in place) is drawn with those.
        oop = {k[0] for k in series[c] if not k[1]}
        lines = {k: v for k, v in series[c].items()
                 if a.in_place or not k[1] or k[0] not in oop}
        labels = sorted({k[0] for k in lines}, key=lambda s: (s != "podccl", s))
        colors = {lb: f"C{i % 10}" for i, lb in enumerate(labels)}
        cx = ctxs[c]
        cpu = joined(x.get("cpu") for x in cx)
        title = (f"{c}, {joined(x.get('nranks') for x in cx)} ranks, "
                 f"{joined(x.get('nhosts') for x in cx)} host(s)\n{cpu}")
        keys = sorted(lines, key=lambda k: (labels.index(k[0]), k[1]))

        def name(k):
            return k[0] + (" (in-place)" if k[1] else "")

        for kind in ("busbw", "lat"):
            fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
            all_sizes = []
            for k in keys:
                pts = sorted((s, v) for s, v in lines[k].items()
                             if kind == "busbw" or s <= LAT_MAX)
                if not pts:
                    continue
                xs = [s for s, _ in pts]
                i = 0 if kind == "busbw" else 1
                ys = [statistics.median(x[i] for x in v) for _, v in pts]
                if kind == "lat":  # a log axis cannot show 0
                    kept = [(x, y) for x, y in zip(xs, ys) if y > 0]
                    xs, ys = [x for x, _ in kept], [y for _, y in kept]
                if not xs:
                    continue
                all_sizes += xs
                ax.plot(xs, ys, marker="o", markersize=3, color=colors[k[0]],
                        linestyle=":" if k[1] else "-", label=name(k))
            if not all_sizes:
                plt.close(fig)
                print(f"# {c}: no sizes <= 64 KiB: no latency plot", file=sys.stderr)
                continue
            size_axis(ax, all_sizes)
            if kind == "busbw":
                seen = set()
                for x in cx:
                    g = x.get("ceiling_gbps")
                    lb = str(x.get("label") or x.get("library") or "")
                    if g is None or g <= 0 or round(g, 1) in seen:
                        continue
                    seen.add(round(g, 1))
                    ax.axhline(g, linestyle="--", linewidth=1, color=colors.get(lb, "gray"),
                               label=f"ceiling {g:.1f} GB/s" + (f" ({lb})" if len(labels) > 1
                                                                 and lb in colors else ""))
                for g in extra.get(c, []):
                    ax.axhline(g, linestyle="--", linewidth=1, color="black",
                               label=f"ideal {g:.1f} GB/s (memcpy ceiling)")
                ax.set_ylabel("busbw (GB/s)")
                ax.set_ylim(bottom=0)
                ax.set_title("busbw: " + title, fontsize=9)
            else:
                ax.set_yscale("log")
                # ticks at 1, 2, 5 x 10^k written plainly (1, 2, 5, 10, 20 ...), no minor labels
                ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
                ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(ticker.NullFormatter())
                ax.set_ylabel("time (us)")
                ax.set_title("latency: " + title, fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            out = f"{prefix}-{kind}-{c}.png"
            try:
                fig.savefig(out, dpi=100)
            except OSError as e:
                print(f"{sys.argv[0]}: {out}: {e}", file=sys.stderr)
                return 1
            plt.close(fig)
            written.append(out)
            print(out)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
