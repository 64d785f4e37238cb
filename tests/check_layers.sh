#!/bin/sh
# The layers of docs/architecture.md, checked on the code itself. Each library source and
# header belongs to one layer (the table below, bottom up); a file and the header of the same
# name are one module. Two kinds of dependency between modules are read:
#   - include lines ("#include "x.h"" in a .c or .h);
#   - symbols: a name one object file uses (nm: undefined) and another one defines.
# It fails, printing each offending edge, when
#   - a module uses a module of a higher layer, or
#   - modules depend on each other in a loop (any layer), or
#   - a library source is in no layer (add it to the table).
# Usage: tests/check_layers.sh [BUILD_DIR]  (default: $top_builddir, else .): the object files
# are the build's; the sources are this script's tree.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
b=${1:-${top_builddir:-.}}
b=$(cd "$b" && pwd)
command -v nm >/dev/null || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
py=$(command -v python3 || command -v /usr/bin/python3) ||
    { echo "SKIP: python3 is not installed"; exit 77; }

# Layer table: layer number, name, then the files (globs relative to the source tree).
layers=$(cat <<'EOF'
1 util       include/podccl.h include/podccl_net.h src/core.h src/util.h src/debug.c src/param.c src/reduce.c
2 boot       src/boot_proto.h src/boot_proto.c src/boot_sock.h src/boot_sock.c src/bootstrap.h src/bootstrap.c src/boot_root.h src/boot_root.c
3 topo       src/topo_file.h src/topo_file.c src/levels.h src/levels.c src/topo.h src/topo.c
4 transport  transports/transport.h transports/tp.h transports/*/*.h transports/*/*.c
5 algo       algorithms/*.h algorithms/*.def algorithms/*.c src/cost.h src/cost.c
6 exec       src/comm.h src/comm.c src/conn.h src/conn.c src/sig.h src/sig.c src/memdom.h src/memdom.c src/wait.h src/wait.c src/exec.h src/exec.c src/trace.h src/trace.c src/net.h src/net.c
7 plan       src/tune.h src/tune.c src/calib.h src/calib.c
8 api        src/enqueue.h src/enqueue.c src/stream.h src/stream.c src/event.c src/p2p.h src/p2p.c src/init.h src/init.c src/query.c src/split.c src/shrink.c src/envinit.c
EOF
)

export CL_SRC="$src" CL_BUILD="$b" CL_LAYERS="$layers"
exec "$py" - <<'PYEOF'
import glob, os, re, subprocess, sys

src, build = os.environ["CL_SRC"], os.environ["CL_BUILD"]
layer_of, lname = {}, {}
for line in os.environ["CL_LAYERS"].splitlines():
    parts = line.split()
    if not parts:
        continue
    num, name = int(parts[0]), parts[1]
    lname[num] = name
    for pat in parts[2:]:
        for f in glob.glob(os.path.join(src, pat)):
            layer_of.setdefault(os.path.relpath(f, src), num)

def module(path):
    """A source and the header of the same name are one module: 'src/comm'."""
    root, ext = os.path.splitext(path)
    return root if ext in (".c", ".h") else path

mods, fail = {}, []
for f, l in sorted(layer_of.items()):
    m = module(f)
    if m in mods and mods[m] != l:
        fail.append(f"{m}.c and {m}.h are in different layers")
    mods.setdefault(m, l)

# Every library source must be placed (the library's sources: what Makefile.am lists).
am = open(os.path.join(src, "Makefile.am")).read()
for f in sorted(set(re.findall(r"\b((?:src|algorithms|transports)/[\w/]+\.[ch])\b", am))):
    if f not in layer_of and os.path.exists(os.path.join(src, f)):
        fail.append(f"{f} is in no layer: add it to the table in tests/check_layers.sh")

edges = {}  # (from module, to module) -> the first reason seen

def add(a, b, why):
    if a != b and a in mods and b in mods:
        edges.setdefault((a, b), why)

# Include lines, resolved as the compiler does (the including file's folder, then -I roots).
roots = [src, os.path.join(src, "include"), os.path.join(src, "src"), os.path.join(src, "tests")]
inc = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
for f in sorted(layer_of):
    text = open(os.path.join(src, f), errors="replace").read()
    for name in inc.findall(text):
        for r in [os.path.dirname(os.path.join(src, f))] + roots:
            p = os.path.normpath(os.path.join(r, name))
            if os.path.exists(p):
                add(module(f), module(os.path.relpath(p, src)), f'{f} includes "{name}"')
                break

# Symbols, from the object files of the library and of the transport modules.
objs = {}
for f in layer_of:
    if not f.endswith(".c"):
        continue
    d, stem = os.path.split(f)
    cands = glob.glob(os.path.join(build, d, ".libs", f"*-{stem[:-2]}.o")) or \
        glob.glob(os.path.join(build, d, f"*-{stem[:-2]}.o"))
    if cands:
        objs[f] = max(cands, key=os.path.getmtime)
defined, used = {}, {}
for f, o in sorted(objs.items()):
    out = subprocess.run(["nm", o], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.setdefault(f, set()).add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVWCG":
            defined.setdefault(parts[2], f)
for f, syms in sorted(used.items()):
    for s in sorted(syms):
        if s in defined and defined[s] != f:
            add(module(f), module(defined[s]), f"{f} uses {s} (defined in {defined[s]})")
if not objs:
    fail.append(f"no object files under {build}: build the library first")

# Upward edges.
for (a, b), why in sorted(edges.items()):
    if mods[a] < mods[b]:
        fail.append(f"layer {lname[mods[a]]} uses layer {lname[mods[b]]}: {why}")

# Loops: strongly connected components (Tarjan, iterative), each shown by one way around it.
graph = {}
for (a, b) in edges:
    graph.setdefault(a, []).append(b)
index, low, stack, on, comps = {}, {}, [], set(), []

def strong(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    work = [(v, iter(sorted(graph.get(v, []))))]
    while work:
        node, it = work[-1]
        for w in it:
            if w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(graph.get(w, [])))))
                break
            if w in on:
                low[node] = min(low[node], index[w])
        else:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))

for v in sorted(mods):
    if v not in index:
        strong(v)

def cycle(comp):
    """A shortest way around the loop from comp's first module (breadth first)."""
    members, start = set(comp), comp[0]
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, [])):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return [start]

for comp in comps:
    path = cycle(comp)
    fail.append(f"loop of {len(comp)} modules ({' '.join(comp)}); one way around it:")
    for a, b in zip(path, path[1:]):
        fail.append(f"    {edges[(a, b)]}")

print(f"check_layers: {len(mods)} modules in {len(lname)} layers, {len(edges)} dependencies, "
      f"{len(objs)} object files")
for line in fail:
    print("FAIL: " + line)
sys.exit(1 if fail else 0)
PYEOF
