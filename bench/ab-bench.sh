#!/usr/bin/env bash
# Two builds of podccl side by side: the same ccl-bench sweep, alternating A and B round after
# round (so that a change of machine load hits both alike), then the median time of each size
# per build and the ratio B/A (> 1: B is slower). For "no slower than before" checks of a
# change: A = the build before it, B = the build after.
#
#   bench/ab-bench.sh A_BUILD B_BUILD [-r ROUNDS] [-c "allreduce allgather ..."] [-p "2 4"] \
#       [-- extra ccl-bench flags]          (defaults: 3 rounds, the five collectives, np 2 and 4,
#                                            -b 8 -e 64M -f 4 -n 20 -w 5)
# A_BUILD, B_BUILD: build directories (bench/ccl-bench inside). Prints one table per collective
# and np: size, A us, B us, B/A, for the out-of-place and in-place columns.
set -euo pipefail
usage() { sed -n '2,12p' "$0"; exit 2; }
[ $# -ge 2 ] || usage
A=$1 B=$2
shift 2
rounds=3 colls="allreduce allgather reducescatter broadcast alltoall" nps="2 4"
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2 ;;
    -c) colls=$2; shift 2 ;;
    -p) nps=$2; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(-b 8 -e 64M -f 4 -n 20 -w 5)
for b in "$A" "$B"; do [ -x "$b/bench/ccl-bench" ] || { echo "no $b/bench/ccl-bench" >&2; exit 2; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for coll in $colls; do
  for np in $nps; do
    for ((r = 0; r < rounds; r++)); do
      for side in A B; do
        dir=$A; [ $side = B ] && dir=$B
        # Rows: size ... time(out) algbw busbw wrong time(in) ...: columns 6 and 10.
        "$dir/bench/ccl-bench" "$coll" -np "$np" "${flags[@]}" 2>/dev/null |
          awk '$1 ~ /^[0-9]+$/ && NF >= 13 {print $1, $6, $10}' > "$tmp/$coll.$np.$side.$r"
      done
    done
    echo "# $coll, np $np: median of $rounds alternating rounds (us); B/A > 1 means B is slower"
    printf '%12s %10s %10s %7s   %10s %10s %7s\n' size A_out B_out B/A A_in B_in B/A
    python3 - "$tmp/$coll.$np" "$rounds" <<'PY'
import statistics, sys
base, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for side in "AB":
    for r in range(rounds):
        for line in open(f"{base}.{side}.{r}"):
            size, t_out, t_in = line.split()
            rows.setdefault(int(size), {"A": ([], []), "B": ([], [])})[side][0].append(float(t_out))
            rows[int(size)][side][1].append(float(t_in))
def med(v):
    return statistics.median(v) if v else 0.0
for size in sorted(rows):
    a, b = rows[size]["A"], rows[size]["B"]
    ao, bo, ai, bi = med(a[0]), med(b[0]), med(a[1]), med(b[1])
    print("%12d %10.2f %10.2f %7.3f   %10.2f %10.2f %7.3f" % (
        size, ao, bo, bo / ao if ao else 0, ai, bi, bi / ai if ai else 0))
PY
    echo
  done
done
