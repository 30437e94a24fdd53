#!/usr/bin/env bash
# bench/run.sh: the time of `run --rm IMAGE true` with networking disabled, side by side in one
# hyperfine run, on the same busybox image (images/build.sh, served by a private registry on
# 127.0.0.1), each engine with private state under a temporary work dir (see bench/lib.sh):
#   berth        target/release/berth run --rm --network none     (berthd, berth-shim, berth-runtime)
#   docker-runc  docker run --rm --network none                   (dockerd 20.10, containerd, runc)
#   docker-crun  docker run --rm --network none --runtime crun
#   podman-crun  podman run --rm --network none --runtime crun    (conmon; cgroupfs; events to a file)
#   podman-runc  podman run --rm --network none --runtime runc
#   ctr          ctr run --rm IMAGE id-N true                     (containerd 1.6 + runc; a container
#                                                                  of ctr's has no network namespace
#                                                                  of its own but lo: no flag needed)
# Each engine first runs the command once (one that fails is reported and left out; berth must work),
# then hyperfine warms each up with 2 runs and times RUNS runs. Prints each engine's median, mean,
# min and max, the ratios berth/each (medians), and whether berth meets the targets: at most 0.5 x
# podman's median and 0.3 x docker's (checked against both runtimes of each). The machine's load
# average is printed at the start and the end: other work on the machine shows up in the numbers.
#
# Usage: bash bench/run.sh          (as root; about two minutes)
#   RUNS=N   timed runs per engine (default 20)
#   KEEP=1   keep the work dir (logs, hyperfine JSON)
# Needs root and cargo; hyperfine, skopeo, docker-registry, docker.io, containerd, podman, crun, runc
# and busybox-static are installed with apt-get when missing.
set -euo pipefail
BENCH=run
RUNS=${RUNS:-20}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

bench_init
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_mount_hugetlb
say "starting berthd, dockerd, containerd and pulling $IMAGE into each store (and podman's)"
bench_start_berthd
bench_start_dockerd
bench_podman
bench_start_containerd

# --- the commands -----------------------------------------------------------------------------------
IMG=$(quote "$IMAGE")
TOOLS=(berth docker-runc docker-crun podman-crun podman-runc ctr)
declare -A CMD WHY
CMD[berth]="$(quote "${BERTH[@]}")run --rm --network none $IMG true"
CMD[docker-runc]="$(quote "${DOCKER[@]}")run --rm --network none $IMG true"
CMD[docker-crun]="$(quote "${DOCKER[@]}")run --rm --network none --runtime crun $IMG true"
CMD[podman-crun]="$(quote "${PODMAN[@]}")run --rm --network none --runtime crun $(quote "${PODMAN_RUN[@]}")$IMG true"
CMD[podman-runc]="$(quote "${PODMAN[@]}")run --rm --network none --runtime runc $(quote "${PODMAN_RUN[@]}")$IMG true"
# A new container ID per run: the PID of the shell hyperfine starts for it.
CMD[ctr]="$(quote "${CTR[@]}")run --rm $IMG id-\$\$ true"

# --- timing -----------------------------------------------------------------------------------------
bench_time "${TOOLS[@]}"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------------------------------
{
  echo "berth $("$BERTH_CLI" --version | sed 's/^berth version //') (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?))"
  echo "dockerd $("${DOCKER[@]}" version -f '{{.Server.Version}}'), $(containerd --version | awk '{print "containerd " $3}')"
  echo "podman $(podman --version | awk '{print $3}'), conmon $(conmon --version | awk 'NR==1 {print $3}')"
  echo "crun $(crun --version | awk 'NR==1 {print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
  echo "kernel $(uname -r), $(nproc) CPUs, cgroups $(if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo v2; else echo v1/hybrid; fi)"
  echo "load average (1, 5, 15 min) at the start $LOAD_START, at the end $LOAD_END"
  for t in "${TOOLS[@]}"; do [ -z "${WHY[$t]:-}" ] || echo "$t not measured: ${WHY[$t]}"; done
  [ ${#PODMAN_RUN[@]} = 0 ] || echo "podman runs with ${PODMAN_RUN[*]} (no CAP_SYS_RESOURCE here)"
} > "$W/meta.txt"
python3 - "$W/run.json" "$W/meta.txt" "$RUNS" "$IMAGE" "$REPO/bench" <<'PY'
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[5])
from timing import load, ms, table, targets
results = load(sys.argv[1])
meta, runs, image = open(sys.argv[2]).read().splitlines(), sys.argv[3], sys.argv[4]
print(f"`run --rm {image} true`, networking disabled: {runs} timed runs per engine after 2 warm-up runs")
for line in meta:
    print("  " + line)
table(results)
times = sorted(ms(t) for t in results["berth"]["times"])
print("berth's runs (ms, sorted): " + " ".join(f"{t:.0f}" for t in times))
slow = sum(t > 2 * times[0] for t in times)
print(f"  {slow} of {len(times)} over twice its fastest run (a bimodal spread makes the median jump between modes)")
targets(results, (("podman-crun", 0.5), ("podman-runc", 0.5), ("docker-runc", 0.3), ("docker-crun", 0.3)))
PY
