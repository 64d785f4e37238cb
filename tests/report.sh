# report.sh: the verdict lines of the multi-part test runners (run_netns.sh, run_tiers.sh,
# run_torch_ddp.sh). Sourced; the caller defines say() and $tmp (its scratch folder) and starts
# with verdicts="" failed=0.

verdict() { # PART PASS|FAIL|SKIP TEXT: one line now, kept in $verdicts for the summary
    say "part $1: $2${3:+: $3}"
    verdicts="$verdicts
  part $1: $2${3:+: $3}"
    [ "$2" != FAIL ] || failed=1
}

show() { # FILE...: the tail of each, indented, to explain a failure
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "  --- ${f#"$tmp"/} (last 15 lines)"
        tail -n 15 "$f" | sed 's/^/  | /'
    done
}
