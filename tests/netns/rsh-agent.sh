#!/bin/sh
# rsh-agent.sh: the "ssh" that Open MPI's mpirun uses (--mca plm_rsh_agent) to start its orted
# daemons on the namespace hosts of tests/netns/lib.sh. "Logging into" HOST means: enter the
# network namespace HOST (ip netns exec, as root) with a UTS namespace of its own whose hostname
# is HOST, and run the command there through sh, as sshd would run it through the login shell
# (mpirun passes one command line split into words that already carry their shell quoting, such
# as -mca ess "env"; ssh joins them with spaces, and so do we).
#
# Why the UTS hostname: every namespace host shares the machine's real hostname. Open MPI keys
# its session directories (/tmp/ompi.<hostname>.<uid>) and the daemons' node names on it, and
# podccl's host identity includes it; a hostname per namespace makes each look like a node of
# its own. Ranks on one namespace host get the same name, so they are still local to each other.
#
# Usage: rsh-agent.sh [-x|-n|...] HOST CMD...  (leading ssh-style options are ignored)
# Environment: NETNS_RSH_LOG=FILE appends each command line to FILE (debugging).
set -u
while [ $# -gt 0 ]; do
    case $1 in
    -l | -p | -o | -i | -F) shift 2 ;; # ssh options with an argument
    -*) shift ;;
    *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    echo "usage: $0 HOST CMD..." >&2
    exit 255
fi
host=$1
shift
if ! [ -e "/run/netns/$host" ]; then
    echo "$0: no network namespace '$host' (ip netns list)" >&2
    exit 255
fi
[ -n "${NETNS_RSH_LOG:-}" ] && echo "$host: $*" >>"$NETNS_RSH_LOG"
exec ip netns exec "$host" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$*"
