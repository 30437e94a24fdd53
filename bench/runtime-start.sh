#!/usr/bin/env bash
# bench/runtime-start.sh: container start-up time of berth-runtime next to crun and runc, side by side
# in one hyperfine run on the same busybox bundle: `run` of /bin/true, and create + start + delete.
# Prints each runtime's median and the ratios berth/crun and berth/runc (lower is better; the target
# is berth <= 0.8 x crun). Needs root. Usage: bench/runtime-start.sh [RUNS] (default 50).
set -euo pipefail
RUNS=${1:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
[ "$(id -u)" = 0 ] || { echo "bench/runtime-start.sh: needs root" >&2; exit 1; }
for tool in hyperfine runc crun busybox python3; do
  command -v "$tool" >/dev/null || { echo "bench/runtime-start.sh: $tool is missing (apt-get install hyperfine runc crun busybox-static)" >&2; exit 1; }
done
BERTH=${BERTH_RUNTIME:-$REPO/target/release/berth-runtime}
if [ ! -x "$BERTH" ]; then
  (cd "$REPO" && cargo build --release -p berth-runtime-cli >&2)
fi

WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
MOUNTED_HUGETLB=0
cleanup() {
  for rt in "$BERTH" crun runc; do
    "$rt" --root "$WORK/state-$(basename "$rt")" delete -f bench >/dev/null 2>&1 || true
  done
  if [ "$MOUNTED_HUGETLB" = 1 ]; then umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# crun refuses a v1-hybrid host without a hugetlb hierarchy: mount one for the run, undone after.
if [ -d /sys/fs/cgroup/unified ] && [ ! -e /sys/fs/cgroup/hugetlb ] && [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb && MOUNTED_HUGETLB=1
fi

# The bundle: busybox-static, runc's default config with /bin/true and no terminal.
B=$WORK/bundle
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/sys" "$B/rootfs/dev" "$B/rootfs/tmp"
cp "$(command -v busybox)" "$B/rootfs/bin/busybox"
for l in sh true; do ln -s busybox "$B/rootfs/bin/$l"; done
(cd "$B" && runc spec)
python3 - "$B/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = True
json.dump(c, open(p, "w"), indent=2)
PY

cmd_run() { echo "$1 --root $WORK/state-$(basename "$1") run --bundle $B bench"; }
cmd_cycle() { local r="$1 --root $WORK/state-$(basename "$1")"; echo "$r create --bundle $B bench && $r start bench && $r delete -f bench"; }

hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$WORK/run.json" \
  -n berth "$(cmd_run "$BERTH")" -n crun "$(cmd_run crun)" -n runc "$(cmd_run runc)" >&2
hyperfine --warmup 5 --runs "$RUNS" --export-json "$WORK/cycle.json" \
  -n berth "$(cmd_cycle "$BERTH")" -n crun "$(cmd_cycle crun)" -n runc "$(cmd_cycle runc)" >&2

python3 - "$WORK/run.json" "$WORK/cycle.json" <<'PY'
import json, sys
for title, path in (("run /bin/true", sys.argv[1]), ("create+start+delete", sys.argv[2])):
    res = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    print(f"{title}: median berth {res['berth']*1000:.2f} ms, crun {res['crun']*1000:.2f} ms, runc {res['runc']*1000:.2f} ms; "
          f"berth/crun {res['berth']/res['crun']:.2f}, berth/runc {res['berth']/res['runc']:.2f}")
PY
