#!/usr/bin/env bash
# bench/mem.sh: the memory that keeps idle containers running, berth next to podman and docker. For
# each engine in turn (private state under a temporary work dir, see bench/lib.sh; the same busybox
# image from a private registry on 127.0.0.1), N idle containers (`sleep 3600`, --network none) are
# started detached, then measured, then removed:
#   berth   berthd; one berth-shim per container (target/release, berth-runtime as the runtime)
#   podman  no daemon; one conmon per container, runtime crun (cgroupfs, events to a file)
#   docker  dockerd and the containerd it starts; containerd-shim-runc-v2 per container, runtime runc
#           (a shim may serve several containers in a group: the processes are counted as found)
# Per supporting process (berth-shim, conmon, containerd-shim), averaged over those found:
# Private (Private_Clean + Private_Dirty), Pss and Rss from /proc/PID/smaps_rollup, and the thread
# count; `sync` runs first (pages of a freshly written binary still dirty in the page cache would
# count as private). The daemons' VmRSS (and Private) idle before the containers (image pulled, no
# container run yet), with the N containers, and after removing them. Prints the ratios berth-shim
# private / conmon private (target <= 0.5) and berthd RSS / dockerd RSS (and / dockerd + containerd).
#
# Usage: bash bench/mem.sh          (as root; about a minute)
#   N=K      idle containers per engine (default 20)
#   KEEP=1   keep the work dir (logs, raw samples)
# Needs root and cargo; the rest is installed with apt-get when missing (see bench/lib.sh).
set -euo pipefail
BENCH=mem
N=${N:-20}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

bench_init
bench_mount_hugetlb
say "starting berthd and dockerd and pulling $IMAGE into each store (and podman's)"
bench_start_berthd
bench_start_dockerd
bench_podman
DOCKER_CTRD_PID=$(dockerd_containerd_pid)
[ -n "$DOCKER_CTRD_PID" ] || die "no containerd under dockerd ($DOCKERD_PID)"

# --- sampling ---------------------------------------------------------------------------------------
# sample.py PHASE ENGINE WORKDIR SUPPORT [ROLE=PID...]: one line per process, in kB:
#   PHASE ENGINE ROLE PID RSS PSS PRIVATE THREADS
# ROLE=PID are the daemons; SUPPORT is the name (argv[0]'s base name) of the per-container processes,
# of which only those whose command line mentions WORKDIR count (other engines on the host do not).
cat > "$W/sample.py" <<'PY'
import os, sys
phase, engine, workdir, support = sys.argv[1:5]
daemons = [a.split("=", 1) for a in sys.argv[5:]]

def measure(pid):
    f = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            f[parts[0].rstrip(":")] = int(parts[1])
    threads = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("Threads:"))
    return f["Rss"], f["Pss"], f["Private_Clean"] + f["Private_Dirty"], int(threads)

rows = [(role, pid) for role, pid in daemons]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if argv and os.path.basename(argv[0]).decode() == support and workdir.encode() + b"/" in b" ".join(argv):
        rows.append((support, pid))
for role, pid in rows:
    try:
        print(phase, engine, role, pid, *measure(pid))
    except (OSError, StopIteration, KeyError):
        pass
PY

sample() { # phase engine support role=pid...
  sync
  python3 "$W/sample.py" "$1" "$2" "$W" "${@:3}" >> "$W/samples.txt"
}

# --- per engine: N idle containers, measured, removed --------------------------------------------------
declare -A RUN RM SUPPORT DAEMONS
RUN[berth]="${BERTH[*]} run -d --network none"
RM[berth]="${BERTH[*]} rm -f"
SUPPORT[berth]=berth-shim
DAEMONS[berth]="berthd=$BERTHD_PID"
RUN[podman]="${PODMAN[*]} run -d --network none --runtime crun ${PODMAN_RUN[*]}"
RM[podman]="${PODMAN[*]} rm -f -t 0"
SUPPORT[podman]=conmon
DAEMONS[podman]=""
RUN[docker]="${DOCKER[*]} run -d --network none"
RM[docker]="${DOCKER[*]} rm -f"
SUPPORT[docker]=containerd-shim-runc-v2
DAEMONS[docker]="dockerd=$DOCKERD_PID containerd=$DOCKER_CTRD_PID"
ENGINES=(berth podman docker)

count_support() { # engine: how many of its supporting processes run
  python3 "$W/sample.py" count "$1" "$W" "${SUPPORT[$1]}" | wc -l
}

for e in "${ENGINES[@]}"; do
  say "$e: $N idle containers"
  sleep 2
  # shellcheck disable=SC2086  # RUN, RM and DAEMONS are word lists (no spaces in their words)
  sample before "$e" "${SUPPORT[$e]}" ${DAEMONS[$e]}
  names=()
  for i in $(seq "$N"); do
    names+=("bench-mem-$e-$i")
    ${RUN[$e]} --name "bench-mem-$e-$i" "$IMAGE" sleep 3600 > /dev/null
  done
  wait_for 30 test "$(count_support "$e")" -ge "$N" || say "$e: only $(count_support "$e") ${SUPPORT[$e]} processes"
  sleep 2
  sample with "$e" "${SUPPORT[$e]}" ${DAEMONS[$e]}
  ${RM[$e]} "${names[@]}" > /dev/null
  wait_for 30 test "$(count_support "$e")" = 0 || say "$e: ${SUPPORT[$e]} processes left after rm"
  sleep 2
  sample after "$e" "${SUPPORT[$e]}" ${DAEMONS[$e]}
done

# --- report -----------------------------------------------------------------------------------------
{
  echo "berth $("$BERTH_CLI" --version | sed 's/^berth version //') (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?))"
  echo "dockerd $("${DOCKER[@]}" version -f '{{.Server.Version}}'), $(containerd --version | awk '{print "containerd " $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
  echo "podman $(podman --version | awk '{print $3}'), conmon $(conmon --version | awk 'NR==1 {print $3}'), crun $(crun --version | awk 'NR==1 {print $3}')"
  echo "kernel $(uname -r), $(nproc) CPUs, load average (1, 5, 15 min) at the end $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$W/meta.txt"
python3 - "$W/samples.txt" "$W/meta.txt" "$N" <<'PY'
import sys
from collections import defaultdict
rows = [l.split() for l in open(sys.argv[1])]
meta, n = open(sys.argv[2]).read().splitlines(), int(sys.argv[3])
data = defaultdict(list)   # (phase, engine, role) -> [(rss, pss, private, threads)]
for phase, engine, role, pid, *v in rows:
    data[(phase, engine, role)].append(tuple(map(int, v)))
support = {"berth": "berth-shim", "podman": "conmon", "docker": "containerd-shim-runc-v2"}
daemons = {"berth": ["berthd"], "podman": [], "docker": ["dockerd", "containerd"]}
avg = lambda xs, i: sum(x[i] for x in xs) / len(xs) if xs else float("nan")

print(f"memory of {n} idle containers (busybox `sleep 3600`, --network none) per engine")
for line in meta:
    print("  " + line)
print(f"per supporting process, with the {n} containers running (kB, average over the processes found):")
print(f"  {'engine':<8}{'process':<26}{'count':>6}{'Private':>10}{'Pss':>10}{'Rss':>10}{'threads':>9}{'total Pss':>11}")
priv = {}
for e, name in support.items():
    xs = data[("with", e, name)]
    priv[e] = avg(xs, 2)
    print(f"  {e:<8}{name:<26}{len(xs):>6}{avg(xs, 2):>10.0f}{avg(xs, 1):>10.0f}{avg(xs, 0):>10.0f}"
          f"{avg(xs, 3):>9.1f}{sum(x[1] for x in xs):>11}")
print("daemons, VmRSS in MB (Private in MB): idle before / with the containers / after removing them:")
rss = {}
for e, names in daemons.items():
    for d in names:
        cells = []
        for phase in ("before", "with", "after"):
            xs = data[(phase, e, d)]
            rss[(d, phase)] = avg(xs, 0) / 1024
            cells.append(f"{avg(xs, 0) / 1024:7.1f} ({avg(xs, 2) / 1024:5.1f})")
        print(f"  {d:<11}" + "   ".join(cells))
print("  podman      (no daemon)")
r = priv["berth"] / priv["podman"]
print(f"berth-shim private / conmon private: {r:.2f} (target <= 0.5: {'met' if r <= 0.5 else 'NOT met'})")
print(f"berth-shim private / containerd-shim private: {priv['berth'] / priv['docker']:.2f}")
for phase in ("before", "with", "after"):
    b, d, c = rss[("berthd", phase)], rss[("dockerd", phase)], rss[("containerd", phase)]
    print(f"berthd RSS / dockerd RSS, {phase:<6}: {b / d:.2f}   / (dockerd + containerd): {b / (d + c):.2f}")
PY
