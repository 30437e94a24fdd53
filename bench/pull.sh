#!/usr/bin/env bash
# bench/pull.sh: image pull time of berthd next to dockerd, podman and containerd (ctr), side by side on
# this machine, from one local registry (Debian's docker-registry, 127.0.0.1 only, plain HTTP), each
# timed pull starting from an empty store:
#   small  busybox: Debian's busybox-static and its applet links, one layer (~1 MB gzipped)
#   large  busybox + 5 layers of copies of real files from /usr/bin, /usr/lib, /usr/share (~275 MB
#          uncompressed, ~110 MB gzipped: realistic compressibility)
# Both images are written as OCI layouts by bench/mkimage.py (cached in $CACHE, default
# target/bench-pull, rebuilt when mkimage.py changes) and pushed with skopeo. Every engine runs with
# private state under a temporary work dir $W, started here and stopped by PID at the end:
#   berth       target/release/berthd; pulled with target/release/berth (or the docker CLI through
#               DOCKER_HOST if the berth CLI does not work), emptied with rmi
#   docker      dockerd (overlay2, --bridge=none --iptables=false --ip6tables=false: no network or
#               firewall changes) on a containerd of its own under $W; docker pull / docker rmi
#   podman      podman --root/--runroot/--tmpdir under $W, overlay; pull --tls-verify=false / rmi -a -f
#   ctr         containerd 1.6 with root, state and socket under $W (CRI disabled); ctr -n bench images
#               pull --plain-http (fetch + unpack) / images rm --sync
# One untimed warm-up pull per engine and image, then hyperfine (--prepare empties the store and
# syncs) with RUNS runs. Prints the median per engine and image, the ratios berth/each, and the
# target (berth <= 0.7 x the fastest of the others); then VmRSS of berthd, dockerd, dockerd's
# containerd and ctr's containerd sampled every 50 ms: idle before the pulls, peak during them, idle
# after. Also prints the size of each store after emptying (it must not grow from run to run: nothing
# left over to speed a pull up). On failure the work dir is kept for its logs.
#
# Usage: bash bench/pull.sh          (as root; takes a few minutes)
#   RUNS=N   timed runs per engine and image (default 5)
#   KEEP=1   keep the work dir (logs, stores, hyperfine JSON) instead of removing it
#   DEBUG=1  print the store size before every timed run, and the daemons' log tails
#   CACHE=D  where the image layouts are cached
# Needs: root, cargo, python3, hyperfine, skopeo, docker-registry, the docker CLI, and for the other
# engines dockerd (docker.io), containerd + ctr (containerd), podman:
#   apt-get install -y hyperfine skopeo docker-registry docker.io containerd podman busybox-static
# An engine that is missing or does not start is reported and left out; berth is always measured.
set -euo pipefail
RUNS=${RUNS:-5}
KEEP=${KEEP:-0}
DEBUG=${DEBUG:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
CACHE=${CACHE:-$REPO/target/bench-pull}
# say, die, wait_for, stop_pid and free_port come from bench/lib.sh (its engine set-up is not used here).
BENCH=bench/pull.sh
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || die "needs root"
for tool in cargo python3 hyperfine skopeo docker-registry docker curl busybox; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y hyperfine skopeo docker-registry busybox-static curl; the docker CLI)"
done

W=
# Run directories some engines create on the host whatever their flags (dockerd: /run/docker/plugins,
# podman: /run/containers/networks): removed at the end if they were not there before and are empty.
HOST_DIRS=()
for d in /run/docker/plugins /run/docker /run/containers/networks /run/containers; do [ -e "$d" ] || HOST_DIRS+=("$d"); done
REG_PID= CTRD_PID= DCTRD_PID= BERTHD_PID= DOCKERD_PID= SAMPLER_PID=

cleanup() {
  local rc=$? m
  trap - EXIT INT TERM
  stop_pid sampler "$SAMPLER_PID"
  stop_pid dockerd "$DOCKERD_PID"
  stop_pid berthd "$BERTHD_PID"
  stop_pid containerd "$DCTRD_PID"
  stop_pid containerd "$CTRD_PID"
  stop_pid docker-registry "$REG_PID"
  for m in "${HOST_DIRS[@]}"; do rmdir "$m" 2>/dev/null || true; done
  [ -n "$W" ] || exit "$rc"
  # Overlay and bind mounts the engines left under $W, deepest first.
  for m in $(awk -v w="$W/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    umount "$m" 2>/dev/null || umount -l "$m" || say "could not unmount $m"
  done
  if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
    if [ "$KEEP" = 1 ]; then say "kept $W"; else say "failed ($rc): logs kept in $W"; fi
  else
    rm -rf "$W"
  fi
  exit "$rc"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building berthd and the berth CLI"
BERTHD=$REPO/target/release/berthd
BERTH_CLI=$REPO/target/release/berth
if ! (cd "$REPO" && cargo build --release -p berth-daemon -p berth-cli >&2); then
  say "the berth CLI does not build: building berthd alone (berth is then driven by the docker CLI)"
  (cd "$REPO" && cargo build --release -p berth-daemon >&2)
  BERTH_CLI=
fi
W=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
chmod 711 "$W"
export DOCKER_CONFIG=$W/docker-cli   # no host credentials or CLI config
mkdir -p "$DOCKER_CONFIG"
echo '{}' > "$DOCKER_CONFIG/config.json"

# --- images -----------------------------------------------------------------------------------------
STAMP=$(sha256sum "$HERE/mkimage.py" "$(command -v busybox)" | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -f "$CACHE/busybox/index.json" ] || [ ! -f "$CACHE/large/index.json" ]; then
  say "writing the image layouts to $CACHE (once; ~1 minute)"
  rm -rf "$CACHE"; mkdir -p "$CACHE"
  python3 "$HERE/mkimage.py" busybox "$CACHE/busybox" | tee "$CACHE/busybox.desc" >&2
  python3 "$HERE/mkimage.py" large "$CACHE/large" | tee "$CACHE/large.desc" >&2
  echo "$STAMP" > "$CACHE/stamp"
fi

# --- registry ---------------------------------------------------------------------------------------
PORT=$(free_port 5099)
REG=127.0.0.1:$PORT
cat > "$W/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: $REG
EOF
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
wait_for 20 curl -fsS "http://$REG/v2/" || { tail -20 "$W/registry.log" >&2; die "docker-registry did not start"; }
SMALL=$REG/bench/busybox:latest
LARGE=$REG/bench/large:latest
say "pushing the images to $REG"
skopeo copy -q --dest-tls-verify=false "oci:$CACHE/busybox:latest" "docker://$SMALL" >&2
skopeo copy -q --dest-tls-verify=false "oci:$CACHE/large:latest" "docker://$LARGE" >&2

# --- engines ----------------------------------------------------------------------------------------
ENGINES=()        # the ones that work, in order
declare -A PULL EMPTY STORE WHY VERSION
PULL_CLI_NOTE=""

# containerd: one for ctr and one for dockerd, so that neither sees the other's content (dockerd 20.10
# keeps manifests in containerd's content store, whose default policy shares blobs across namespaces).
start_containerd() { # name: config, root, state and socket $W/name*; sets STARTED_PID
  cat > "$W/$1.toml" <<EOF
version = 2
root = "$W/$1-root"
state = "$W/$1-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$W/$1.sock"
[ttrpc]
  address = "$W/$1.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/$1-opt"
EOF
  containerd --config "$W/$1.toml" > "$W/$1.log" 2>&1 &
  STARTED_PID=$!
}
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  start_containerd ctrd; CTRD_PID=$STARTED_PID
  CTR="ctr -a $W/ctrd.sock -n bench"
  if wait_for 30 $CTR version; then
    ENGINES+=(ctr)
    VERSION[ctr]="containerd $(containerd --version | awk '{print $3}')"
    PULL[ctr]="$CTR images pull --plain-http"
    EMPTY[ctr]="$CTR images rm --sync"
    STORE[ctr]="$W/ctrd-root"
  else
    WHY[ctr]="containerd did not start: $(tail -3 "$W/ctrd.log" | tr '\n' ' ')"
    stop_pid containerd "$CTRD_PID"; CTRD_PID=
  fi
else
  WHY[ctr]="containerd/ctr not installed (apt-get install -y containerd)"
fi

"$BERTHD" -H "unix://$W/berth.sock" --data-root "$W/berth-data" --exec-root "$W/berth-exec" \
  --pidfile "$W/berthd.pid" > "$W/berthd.log" 2>&1 &
BERTHD_PID=$!
wait_for 30 env DOCKER_HOST="unix://$W/berth.sock" docker version || {
  tail -20 "$W/berthd.log" >&2; die "berthd did not start (log above)"; }
VERSION[berth]="berthd $(DOCKER_HOST="unix://$W/berth.sock" docker version -f '{{.Server.Version}}' 2>/dev/null)"
STORE[berth]="$W/berth-data"

if command -v dockerd >/dev/null; then
  echo '{}' > "$W/daemon.json"
  DOCKERD_ARGS=(-H "unix://$W/docker.sock" --data-root "$W/docker-data" --exec-root "$W/docker-exec"
    --pidfile "$W/docker.pid" --config-file "$W/daemon.json" --storage-driver overlay2
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false)
  if command -v containerd >/dev/null; then
    start_containerd dockerd-ctrd; DCTRD_PID=$STARTED_PID
    if wait_for 30 ctr -a "$W/dockerd-ctrd.sock" version; then
      DOCKERD_ARGS+=(--containerd "$W/dockerd-ctrd.sock")
    else
      stop_pid containerd "$DCTRD_PID"; DCTRD_PID=   # dockerd then starts its own, under its dirs
    fi
  fi
  dockerd "${DOCKERD_ARGS[@]}" > "$W/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  if wait_for 60 env DOCKER_HOST="unix://$W/docker.sock" docker version; then
    ENGINES+=(docker)
    VERSION[docker]="dockerd $(DOCKER_HOST="unix://$W/docker.sock" docker version -f '{{.Server.Version}}')"
    PULL[docker]="env DOCKER_HOST=unix://$W/docker.sock docker pull"
    EMPTY[docker]="env DOCKER_HOST=unix://$W/docker.sock docker rmi"
    STORE[docker]="$W/docker-data"
  else
    WHY[docker]="dockerd did not start: $(tail -3 "$W/dockerd.log" | tr '\n' ' ')"
    stop_pid dockerd "$DOCKERD_PID"; DOCKERD_PID=
  fi
else
  WHY[docker]="dockerd not installed (apt-get install -y docker.io)"
fi

if command -v podman >/dev/null; then
  PODMAN="podman --root $W/podman-root --runroot $W/podman-run --tmpdir $W/podman-tmp --storage-driver overlay --events-backend none --cgroup-manager cgroupfs --network-config-dir $W/podman-net"
  mkdir -p "$W/podman-net"
  if $PODMAN version > "$W/podman.log" 2>&1; then
    ENGINES+=(podman)
    VERSION[podman]="podman $(podman --version | awk '{print $3}')"
    PULL[podman]="$PODMAN pull --tls-verify=false"
    EMPTY[podman]="$PODMAN rmi -a -f"
    STORE[podman]="$W/podman-root"
  else
    WHY[podman]="podman does not work: $(tail -3 "$W/podman.log" | tr '\n' ' ')"
  fi
else
  WHY[podman]="podman not installed (apt-get install -y podman)"
fi

# berth: its own CLI if it pulls, else the docker CLI (checked in the warm-up below).
BERTH_VIA_CLI="$BERTH_CLI -H unix://$W/berth.sock"
BERTH_VIA_DOCKER="env DOCKER_HOST=unix://$W/berth.sock docker"
ENGINES=(berth "${ENGINES[@]}")

# The prepare step: empty the store, record its size, sync (no dirty pages of the previous run).
cat > "$W/empty.sh" <<'EOF'
#!/bin/sh
# empty.sh ENGINE IMAGE STORE EMPTY-COMMAND...
engine=$1 image=$2 store=$3; shift 3
"$@" >/dev/null 2>&1 || true
echo "$engine $image $(du -sk "$store" 2>/dev/null | cut -f1)" >> "${0%/*}/store-sizes.$(cat "${0%/*}/phase")"
sync
EOF
chmod +x "$W/empty.sh"
empty_cmd() { # engine image
  case $1 in
    podman) echo "$W/empty.sh $1 $2 ${STORE[$1]} ${EMPTY[$1]}" ;;
    *) echo "$W/empty.sh $1 $2 ${STORE[$1]} ${EMPTY[$1]} $2" ;;
  esac
}

# --- memory sampler ---------------------------------------------------------------------------------
echo idle > "$W/phase"
SAMPLE_ARGS=("berthd=$BERTHD_PID")
[ -n "$DOCKERD_PID" ] && SAMPLE_ARGS+=("dockerd=$DOCKERD_PID")
[ -n "$CTRD_PID" ] && SAMPLE_ARGS+=("containerd=$CTRD_PID")
[ -n "$DCTRD_PID" ] && SAMPLE_ARGS+=("dockerd-containerd=$DCTRD_PID")
python3 - "$W/phase" "$W/rss.log" "${SAMPLE_ARGS[@]}" <<'PY' &
import signal, sys, time
phase_file, out = sys.argv[1], open(sys.argv[2], "w", buffering=1)
pids = [a.split("=", 1) for a in sys.argv[3:]]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    try:
        phase = open(phase_file).read().strip()
    except OSError:
        phase = "?"
    for name, pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    out.write(f"{phase} {name} {line.split()[1]}\n")
        except OSError:
            pass
    time.sleep(0.05)
PY
SAMPLER_PID=$!
sleep 3   # idle samples

# --- berth's client: its own CLI if it pulls, else the docker CLI -----------------------------------
echo warmup-small > "$W/phase"
for via in cli docker; do
  if [ "$via" = cli ]; then [ -n "$BERTH_CLI" ] && [ -x "$BERTH_CLI" ] || continue; base=$BERTH_VIA_CLI; else base=$BERTH_VIA_DOCKER; fi
  PULL[berth]="$base pull"; EMPTY[berth]="$base rmi"
  if $base pull "$SMALL" > "$W/warmup-berth-$via.log" 2>&1 && $base rmi "$SMALL" >> "$W/warmup-berth-$via.log" 2>&1; then
    if [ "$via" = cli ]; then PULL_CLI_NOTE="berth pulls with target/release/berth (its own CLI)"
    elif [ -z "$BERTH_CLI" ]; then PULL_CLI_NOTE="berth pulls with the docker CLI through DOCKER_HOST (the berth CLI did not build)"
    else PULL_CLI_NOTE="berth pulls with the docker CLI through DOCKER_HOST (the berth CLI failed: $(tail -1 "$W/warmup-berth-cli.log"))"
    fi
    break
  fi
  say "berth via $via: pull failed: $(tail -3 "$W/warmup-berth-$via.log" | tr '\n' ' ')"
done
[ -n "$PULL_CLI_NOTE" ] || { tail -30 "$W/berthd.log" >&2; die "berth cannot pull (berthd log above)"; }

# --- per image: one untimed warm-up pull per engine (one that fails is left out), then hyperfine -----
for kind in small large; do
  img=$SMALL; [ "$kind" = large ] && img=$LARGE
  echo "warmup-$kind" > "$W/phase"
  WORKING=()
  for e in "${ENGINES[@]}"; do
    [ -z "${WHY[$e]:-}" ] || continue
    sh -c "$(empty_cmd "$e" "$img")"
    if sh -c "${PULL[$e]} $img" > "$W/warmup-$e-$kind.log" 2>&1; then
      WORKING+=("$e")
    else
      WHY[$e]="warm-up pull of $img failed: $(tail -3 "$W/warmup-$e-$kind.log" | tr '\n' ' ')"
      [ "$e" = berth ] && { tail -30 "$W/berthd.log" >&2; die "berth: ${WHY[berth]}"; }
      say "$e left out: ${WHY[$e]}"
    fi
    sh -c "$(empty_cmd "$e" "$img")"
  done
  echo "pull-$kind" > "$W/phase"
  args=()
  for e in "${WORKING[@]}"; do
    args+=(--prepare "$(empty_cmd "$e" "$img")" -n "$e" "${PULL[$e]} $img")
  done
  say "timing the $kind image: ${WORKING[*]}, $RUNS runs each"
  hyperfine --runs "$RUNS" --export-json "$W/$kind.json" "${args[@]}" >&2
  echo "empty-$kind" > "$W/phase"
  for e in "${WORKING[@]}"; do sh -c "$(empty_cmd "$e" "$img")"; done
done
echo after > "$W/phase"
sleep 3
stop_pid sampler "$SAMPLER_PID"; SAMPLER_PID=

if [ "$DEBUG" = 1 ]; then
  for f in "$W"/store-sizes.*; do say "store sizes (KB) after emptying, ${f##*.}:"; cat "$f" >&2; done
  for f in berthd dockerd ctrd; do [ -f "$W/$f.log" ] && { say "$f.log (tail):"; tail -15 "$W/$f.log" >&2; }; done
fi
ERRS=$(grep -ciE '(^|[^a-z])(error|panic)' "$W/berthd.log" || true)

# --- report -----------------------------------------------------------------------------------------
{
  for e in "${WORKING[@]}"; do echo "version $e ${VERSION[$e]:-?}"; done
  for e in ctr docker podman; do [ -n "${WHY[$e]:-}" ] && echo "missing $e ${WHY[$e]}"; done
  echo "desc small $(cut -d' ' -f2- "$CACHE/busybox.desc")"
  echo "desc large $(cut -d' ' -f2- "$CACHE/large.desc")"
  echo "note $PULL_CLI_NOTE"
} > "$W/meta.txt"
python3 - "$W" "$RUNS" "$REG" "${WORKING[@]}" <<'PY'
import json, os, statistics, sys
w, runs, reg, engines = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
meta = [l.rstrip("\n").split(" ", 2) for l in open(os.path.join(w, "meta.txt"))]
get = lambda k: [(a, b) for t, a, b in (m if len(m) == 3 else m + [""] for m in meta) if t == k]
desc = dict(get("desc"))
others = [e for e in engines if e != "berth"]
print(f"pull from a local registry ({reg}, plain HTTP), into an empty store, median of {runs} runs")
print("  " + "; ".join(f"{e}: {v}" for e, v in get("version")))
for e, why in get("missing"):
    print(f"  {e}: not measured: {why}")
for m in meta:
    if m[0] == "note":
        print("  " + " ".join(m[1:]))
print(f"  images: busybox = {desc['small']}; large = {desc['large']}")
head = f"{'image':<10}" + "".join(f"{e:>10}" for e in engines) + "".join(f"{'berth/' + e:>14}" for e in others)
print(head)
verdicts = []
for kind, name in (("small", "busybox"), ("large", "large")):
    res = {r["command"]: r for r in json.load(open(os.path.join(w, kind + ".json")))["results"]}
    med = {e: res[e]["median"] for e in engines}
    row = f"{name:<10}" + "".join(f"{med[e]:>9.3f}s" for e in engines)
    row += "".join(f"{med['berth'] / med[e]:>14.2f}" for e in others)
    print(row)
    if others:
        fastest = min(others, key=lambda e: med[e])
        r = med["berth"] / med[fastest]
        verdicts.append(f"{name} {r:.2f} x {fastest} ({'met' if r <= 0.7 else 'NOT met'})")
if verdicts:
    print("target: berth <= 0.70 x the fastest of the others: " + "; ".join(verdicts))

# memory
samples = {}
for line in open(os.path.join(w, "rss.log")):
    parts = line.split()
    if len(parts) == 3:
        samples.setdefault((parts[1], parts[0]), []).append(int(parts[2]) / 1024)
print("memory, VmRSS in MB sampled every 50 ms: idle before any pull / peak during the timed pulls "
      "(busybox, large) / idle after")
for d in ("berthd", "dockerd", "dockerd-containerd", "containerd"):
    idle = samples.get((d, "idle"))
    if not idle:
        continue
    small, large, after = (samples.get((d, p), [0]) for p in ("pull-small", "pull-large", "after"))
    print(f"  {d:<18} idle {statistics.median(idle):7.1f}   peak {max(small):7.1f} (busybox) "
          f"{max(large):7.1f} (large)   after {statistics.median(after):7.1f}")
print("  (containerd is the daemon ctr pulls through; dockerd pulls into its own overlay2 store and keeps only "
      "manifests in dockerd-containerd, its own containerd; podman has no daemon)")

# store sizes after emptying: must not grow
sizes = {}
for phase in ("pull-small", "pull-large"):
    for line in open(os.path.join(w, "store-sizes." + phase)):
        e, img, kb = line.split()
        sizes.setdefault(e, []).append(int(kb))
print("store size after each emptying (KB, min-max over the timed runs): " +
      ", ".join(f"{e} {min(v)}-{max(v)}" for e, v in sizes.items()))
PY
if [ "$ERRS" != 0 ]; then echo "berthd.log: $ERRS line(s) mention error/panic (KEEP=1 to read it)"; fi
