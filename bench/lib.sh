# bench/lib.sh: shared by bench/run.sh and bench/mem.sh (sourced, not run). Sets up the engines the
# container benchmarks compare, each with private state under one temporary work dir $W, and takes
# everything down again:
#   registry  Debian's docker-registry on 127.0.0.1:<free port>, plain HTTP, holding the busybox image
#             that images/build.sh writes (the only image source: no Docker Hub, no unqualified names)
#   berth     target/release/berthd (berth-shim and berth-runtime next to it) on $W/berth.sock, with a
#             default bridge and nftables table of its own (bbench<pid>, 10.198.x.0/24)
#   docker    dockerd on $W/docker.sock with the containerd it starts itself (under $W/docker-exec),
#             no bridge, no iptables, runtimes runc (its default) and crun
#   podman    podman with --root/--runroot/--tmpdir under $W, cgroupfs, events to a file (no daemon)
#   netns     after bench_netns (bench/net.sh), dockerd and podman run in a network namespace of the
#             bench's own (berthbench-<pid>) with their default networks instead: dockerd with its
#             bridge (docker0, 10.197.0.1/24), iptables rules and docker-proxy, podman with its default
#             network (netavark); their bridges, veths and firewall rules stay in that namespace and go
#             with it at the end, the host's are never touched. Their CLIs reach them as before (the
#             daemon's unix socket; podman runs under nsenter --net). The registry on the host's
#             loopback is out of their reach there: they load the same image from a docker-archive
#             that skopeo writes from it, under the same name
#   ctr       a containerd of its own (root, state, socket under $W), namespace "bench", runc
# The caller sets BENCH (its name, for messages), sources this file, calls bench_init, then the
# bench_start_* functions it needs; the EXIT trap (bench_cleanup) removes the containers and images,
# stops what was started here by PID, unmounts what was mounted here, removes the cgroups and host
# paths the engines created (those that did not exist before) and the work dir (kept on failure or
# with KEEP=1).
# Needs root and cargo; the rest is installed with apt-get when missing (see bench_install).

say() { echo "$BENCH: $*" >&2; }
die() { say "$*"; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEEP=${KEEP:-0}
W=
REG_PID= BERTHD_PID= DOCKERD_PID= CTRD_PID=
BENCH_NETNS= IN_NETNS=()
MOUNTED_HUGETLB=0
BERTH=() DOCKER=() PODMAN=() PODMAN_RUN=() CTR=()
IMAGE=
# Host paths that some engines create whatever their flags (dockerd: /run/docker, /etc/docker/key.json
# unless told otherwise; podman and skopeo: /run/containers, the blob-info cache under
# /var/lib/containers), and the cgroups they make (docker/, libpod_parent/, berth/, bench/ for ctr's
# namespace): the ones missing at the start are removed at the end if empty.
HOST_PATHS=(/run/docker /run/containers /etc/docker/key.json /etc/docker /var/lib/containers)
CGROUP_NAMES=(berth docker libpod_parent bench)
NEW_HOST_PATHS=() NEW_CGROUPS=()

# --- helpers ----------------------------------------------------------------------------------------
wait_for() { # seconds command...: retries every 0.1 s until the command succeeds
  local n=$(($1 * 10)); shift
  while ! "$@" >/dev/null 2>&1; do
    n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 0.1
  done
}

stop_pid() { # name pid: SIGTERM, up to 20 s, then SIGKILL; only processes started here
  local name=$1 pid=$2 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) did not stop on SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

quote() { [ $# = 0 ] || printf '%q ' "$@"; } # words for a command line run by sh -c (hyperfine)

free_port() { # first: a free TCP port on 127.0.0.1 from `first` up to 5198, else any free one
  python3 - "$1" <<'PY'
import socket, sys
for port in list(range(int(sys.argv[1]), 5199)) + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1]); break
    except OSError:
        pass
    finally:
        s.close()
PY
}

# --- set-up -----------------------------------------------------------------------------------------
bench_install() { # command:package ...: apt-get installs the packages of the missing commands
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing ${missing[*]}"
  # No service may start during the install (docker.io and containerd would start the host's daemons):
  # a policy-rc.d that forbids it, only if there is none already, removed right after.
  local policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 || rc=$?
  [ "$policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed"
}

bench_init() { # installs what is missing, builds berth, makes $W, the image and the registry
  [ "$(id -u)" = 0 ] || die "needs root"
  command -v cargo >/dev/null || die "cargo is missing (rustup)"
  bench_install python3:python3 curl:curl busybox:busybox-static hyperfine:hyperfine skopeo:skopeo \
    docker-registry:docker-registry dockerd:docker.io docker:docker.io containerd:containerd \
    ctr:containerd containerd-shim-runc-v2:containerd podman:podman conmon:conmon crun:crun runc:runc
  # The docker CLI: the newer one in /usr/local/bin where there is one, else docker.io's.
  DOCKER_CLI=$(command -v /usr/local/bin/docker || command -v docker)

  local p c h hierarchies=(/sys/fs/cgroup/)
  for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] || NEW_HOST_PATHS+=("$p"); done
  [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || hierarchies=(/sys/fs/cgroup/*/)   # v1 or hybrid
  for h in "${hierarchies[@]}"; do
    for c in "${CGROUP_NAMES[@]}"; do [ -e "$h$c" ] || NEW_CGROUPS+=("$h$c"); done
  done
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  say "building berth (release)"
  (cd "$REPO" && cargo build --release -p berth-daemon -p berth-cli -p berth-shim -p berth-runtime-cli >&2)
  local target=${CARGO_TARGET_DIR:-target}
  case $target in /*) ;; *) target=$REPO/$target ;; esac
  BERTHD=$target/release/berthd
  BERTH_CLI=$target/release/berth

  W=$(mktemp -d "/tmp/berth-bench-$BENCH.XXXXXX")
  chmod 711 "$W"
  export DOCKER_CONFIG=$W/docker-cli TMPDIR=$W/tmp   # no host CLI config; podman's and skopeo's temp files
  mkdir -p "$DOCKER_CONFIG" "$TMPDIR"
  echo '{}' > "$DOCKER_CONFIG/config.json"

  say "building the busybox image (images/build.sh)"
  bash "$REPO/images/build.sh" "$W/images" >/dev/null
  bench_registry
}

bench_registry() { # starts docker-registry on a free 127.0.0.1 port and pushes busybox; sets IMAGE
  local port
  port=$(free_port 5100)
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
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
  REG_PID=$!
  wait_for 20 curl -fsS "http://127.0.0.1:$port/v2/" || { tail -20 "$W/registry.log" >&2; die "docker-registry did not start"; }
  IMAGE=127.0.0.1:$port/bench/busybox:latest
  skopeo copy -q --dest-tls-verify=false "oci:$W/images/busybox:latest" "docker://$IMAGE" >&2
}

# crun refuses a cgroup v1 (hybrid) host without a hugetlb hierarchy: mount one, undone at the end.
bench_mount_hugetlb() {
  [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] || return 0
  mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null && return 0
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  MOUNTED_HUGETLB=1
  local c; for c in "${CGROUP_NAMES[@]}"; do NEW_CGROUPS+=("/sys/fs/cgroup/hugetlb/$c"); done
}

# The network namespace that dockerd and podman then run in with their default networks (see the header).
# No firewalld may run: dockerd and netavark would hand it their rules over D-Bus, and firewalld works on
# the host's namespace.
BENCH_NETNS_BIP=${BENCH_NETNS_BIP:-10.197.0.1/24}
bench_netns() { # sets BENCH_NETNS and IN_NETNS (the command prefix that runs a command in it)
  ! pgrep -x firewalld >/dev/null || die "firewalld runs here: dockerd and netavark would add their rules to the host's"
  [ -e /run/xtables.lock ] || NEW_HOST_PATHS+=(/run/xtables.lock)   # iptables' lock, in the host's /run
  ip netns add "berthbench-$$" || die "ip netns add berthbench-$$ failed"
  BENCH_NETNS=berthbench-$$
  IN_NETNS=(nsenter "--net=/run/netns/$BENCH_NETNS")
  ip -n "$BENCH_NETNS" link set lo up
  skopeo copy -q "oci:$W/images/busybox:latest" "docker-archive:$W/busybox.tar:$IMAGE" >&2
}

bench_load_image() { # cli...: loads $IMAGE from the archive bench_netns wrote (docker and podman)
  "$@" load -q -i "$W/busybox.tar" >/dev/null
}

# --- engines: each bench_start_* starts one and pulls $IMAGE into it ------------------------------------
# berthd's default bridge and nftables table for the benchmarks: their own, so that a berthd the user
# runs (berth0, table inet berth) is never touched; removed by bench_cleanup.
BENCH_NET=bbench$$
BENCH_BIP=${BENCH_BIP:-10.198.$(($$ % 250)).1/24}
bench_start_berthd() { # sets BERTH (the CLI against it)
  "$BERTHD" -H "unix://$W/berth.sock" --data-root "$W/berth-data" --exec-root "$W/berth-exec" \
    --pidfile "$W/berthd.pid" --bridge "${BENCH_NET:0:15}" --firewall-table "$BENCH_NET" --bip "$BENCH_BIP" \
    > "$W/berthd.log" 2>&1 &
  BERTHD_PID=$!
  BERTH=("$BERTH_CLI" -H "unix://$W/berth.sock")
  wait_for 30 "${BERTH[@]}" version || { tail -20 "$W/berthd.log" >&2; die "berthd did not start (log above)"; }
  "${BERTH[@]}" pull -q "$IMAGE" >/dev/null
}

bench_start_dockerd() { # sets DOCKER; dockerd starts its own containerd (under $W/docker-exec)
  cat > "$W/daemon.json" <<EOF
{"deprecated-key-path": "$W/docker-key.json"}
EOF
  local net=(--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false)
  [ -z "$BENCH_NETNS" ] || net=(--bip "$BENCH_NETNS_BIP")   # its defaults, in the bench's namespace
  "${IN_NETNS[@]}" dockerd -H "unix://$W/docker.sock" --data-root "$W/docker-data" \
    --exec-root "$W/docker-exec" --pidfile "$W/docker.pid" --config-file "$W/daemon.json" "${net[@]}" \
    --add-runtime "crun=$(command -v crun)" > "$W/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  DOCKER=("$DOCKER_CLI" -H "unix://$W/docker.sock")
  wait_for 60 "${DOCKER[@]}" version || { tail -20 "$W/dockerd.log" >&2; die "dockerd did not start (log above)"; }
  if [ -n "$BENCH_NETNS" ]; then bench_load_image "${DOCKER[@]}"; else "${DOCKER[@]}" pull -q "$IMAGE" >/dev/null; fi
}

dockerd_containerd_pid() { pgrep -P "$DOCKERD_PID" -x containerd | head -1; }

bench_start_containerd() { # sets CTR (ctr against it, namespace "bench")
  cat > "$W/ctrd.toml" <<EOF
version = 2
root = "$W/ctrd-root"
state = "$W/ctrd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$W/ctrd.sock"
[ttrpc]
  address = "$W/ctrd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/ctrd-opt"
EOF
  containerd --config "$W/ctrd.toml" > "$W/ctrd.log" 2>&1 &
  CTRD_PID=$!
  CTR=(ctr -a "$W/ctrd.sock" -n bench)
  wait_for 30 "${CTR[@]}" version || { tail -20 "$W/ctrd.log" >&2; die "containerd did not start (log above)"; }
  "${CTR[@]}" images pull --plain-http "$IMAGE" >/dev/null
}

bench_podman() { # sets PODMAN and PODMAN_RUN (the flags every podman run needs here)
  mkdir -p "$W/podman-net"
  PODMAN=("${IN_NETNS[@]}" podman --root "$W/podman-root" --runroot "$W/podman-run" --tmpdir "$W/podman-tmp"
    --cgroup-manager cgroupfs --events-backend file --network-config-dir "$W/podman-net")
  PODMAN_RUN=()
  # Podman asks for nofile and nproc limits above the current hard limits (1048576 and more); without
  # CAP_SYS_RESOURCE (a sandbox's bounding set) the runtime's setrlimit fails: ask for the hard limits.
  if (( ! ((16#$(awk '/^CapEff/ { print $2 }' /proc/self/status) >> 24) & 1) )); then
    local n; n=$(ulimit -Hn); [ "$(ulimit -Hu)" = unlimited ] || [ "$(ulimit -Hu)" -ge "$n" ] || n=$(ulimit -Hu)
    PODMAN_RUN=(--ulimit "nofile=$n:$n" --ulimit "nproc=$n:$n")
    say "no CAP_SYS_RESOURCE here: podman runs with ${PODMAN_RUN[*]}"
  fi
  if [ -n "$BENCH_NETNS" ]; then bench_load_image "${PODMAN[@]}"
  else "${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >/dev/null; fi
}

# --- timing (run.sh, net.sh) -------------------------------------------------------------------------
# The caller fills the associative array CMD (tool -> command line for sh -c) and declares WHY too.
# bench_time runs each tool's command once: one that fails is left out and WHY[tool] says why (berth
# must work); then hyperfine warms the others up with 2 runs each and times RUNS runs into $W/run.json.
bench_time() { # tool...; sets WORKING (the tools timed)
  local t args=()
  WORKING=()
  for t in "$@"; do
    if sh -c "${CMD[$t]}" > "$W/check-$t.log" 2>&1; then
      WORKING+=("$t")
    else
      WHY[$t]=$(tail -3 "$W/check-$t.log" | tr '\n' ' ')
      [ "$t" != berth ] || { tail -20 "$W/berthd.log" >&2; die "berth cannot run the image: ${WHY[$t]}"; }
      say "$t left out: ${WHY[$t]}"
    fi
  done
  for t in "${WORKING[@]}"; do args+=(-n "$t" "${CMD[$t]}"); done
  say "timing ${WORKING[*]}: 2 warm-up runs and $RUNS timed runs each"
  hyperfine --warmup 2 --runs "$RUNS" --export-json "$W/run.json" "${args[@]}" >&2
}

# --- clean-up ---------------------------------------------------------------------------------------
bench_remove_containers() { # every container and image in the private stores
  local ids c
  if [ -n "$BERTHD_PID" ] && kill -0 "$BERTHD_PID" 2>/dev/null; then
    ids=$("${BERTH[@]}" ps -aq 2>/dev/null); [ -z "$ids" ] || "${BERTH[@]}" rm -f $ids >/dev/null 2>&1
    "${BERTH[@]}" rmi -f "$IMAGE" >/dev/null 2>&1
  fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    ids=$("${DOCKER[@]}" ps -aq 2>/dev/null); [ -z "$ids" ] || "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
    "${DOCKER[@]}" rmi -f "$IMAGE" >/dev/null 2>&1
  fi
  if [ ${#PODMAN[@]} -gt 0 ]; then
    "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1
    "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
  fi
  if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do
      "${CTR[@]}" tasks kill -s KILL "$c" >/dev/null 2>&1; sleep 0.2
      "${CTR[@]}" tasks rm -f "$c" >/dev/null 2>&1; "${CTR[@]}" containers rm "$c" >/dev/null 2>&1
    done
    "${CTR[@]}" images rm --sync "$IMAGE" >/dev/null 2>&1
  fi
}

bench_cleanup() {
  local rc=$? m p b
  trap - EXIT INT TERM
  set +e
  bench_remove_containers
  stop_pid dockerd "$DOCKERD_PID"
  if [ -n "$BENCH_NETNS" ]; then   # its bridges, veths and firewall rules go with it
    p=$(ip netns pids "$BENCH_NETNS" 2>/dev/null | tr '\n' ' ')
    [ -z "$p" ] || say "processes left in $BENCH_NETNS: $p(it lives on until they end)"
    ip netns del "$BENCH_NETNS"
  fi
  stop_pid berthd "$BERTHD_PID"
  if [ -n "$BERTHD_PID" ]; then   # berthd's bridges (the default one and any user network's) and table
    ip link del "${BENCH_NET:0:15}" 2>/dev/null
    for p in "$W"/berth-data/network/*.json; do
      [ -e "$p" ] || continue
      b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("bridge", ""))' "$p")
      [ -z "$b" ] || [ "$b" = "${BENCH_NET:0:15}" ] || ip link del "$b" 2>/dev/null
    done
    nft delete table inet "$BENCH_NET" 2>/dev/null
  fi
  stop_pid containerd "$CTRD_PID"
  stop_pid docker-registry "$REG_PID"
  if [ -n "$W" ]; then
    # Overlay and bind mounts the engines left under $W, deepest first.
    for m in $(awk -v w="$W/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
      umount "$m" 2>/dev/null || umount -l "$m" || say "could not unmount $m"
    done
  fi
  # Cgroups the engines made that were not there before (rmdir leaves any that are in use).
  for p in "${NEW_CGROUPS[@]}"; do
    [ -d "$p" ] && find "$p" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ "$MOUNTED_HUGETLB" = 1 ]; then
    if [ -z "$(find /sys/fs/cgroup/hugetlb -mindepth 1 -type d 2>/dev/null | head -1)" ]; then
      umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb
    else
      say "left /sys/fs/cgroup/hugetlb mounted: other cgroups use it now"
    fi
  fi
  for p in "${NEW_HOST_PATHS[@]}"; do
    if [ -d "$p" ]; then find "$p" -depth \( -type d -empty -delete \) -o -name 'blob-info-cache-v1.boltdb' -delete 2>/dev/null
    elif [ -e "$p" ]; then rm -f "$p"; fi
  done
  if [ -n "$W" ]; then
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
      if [ "$KEEP" = 1 ]; then say "kept $W"; else say "failed ($rc): logs kept in $W"; fi
    else
      rm -rf "$W"
    fi
  fi
  exit "$rc"
}
