#!/usr/bin/env bash
# bench/net.sh: berth next to docker and podman, each with its DEFAULT network (no --network flag), on
# the same busybox image (images/build.sh, served by a private registry on 127.0.0.1), each engine with
# private state under a temporary work dir (see bench/lib.sh):
#   berth        berthd's default bridge (bbench<pid>, 10.198.x.0/24, nftables table of its own):
#                veth, address, NAT, published ports by DNAT (from loopback too)
#   docker-runc  dockerd 20.10's default bridge (docker0, 10.197.0.1/24): iptables NAT, docker-proxy
#                (its default userland proxy, which carries the connections made to 127.0.0.1)
#   podman-crun  podman's default network (netavark: bridge podman0, 10.88.0.0/16, iptables NAT)
# dockerd and podman run in a network namespace the bench makes (berthbench-<pid>): the same kernel
# paths (veth, bridge, netfilter), but their bridges and firewall rules (DOCKER chains, the FORWARD
# policy, netavark's chains) stay off the host and go with that namespace at the end. berthd runs on the
# host with a bridge and table of its own. Their loopback clients run in their own namespace (podman's
# command lines start with nsenter --net, an exec more: about a millisecond). Where the host has
# nftables tables of its own (another berthd's, a firewall), berth's packets pass their hooks too, and
# docker's and podman's do not: compare with `nft list tables` in mind.
# Two measures:
#   1. `run --rm IMAGE true`: hyperfine warms each engine up with 2 runs and times RUNS runs; prints
#      each median, mean, min, max, the ratios berth/each (medians) and the targets: berth at most
#      0.3 x docker's median and 0.5 x podman's.
#   2. Throughput of a published port: a server container (busybox `nc -ll -p 80 -e` dd of=/dev/null
#      bs=1M iflag=fullblock, a fresh dd per connection, which replies with its record count) published
#      with -p 127.0.0.1:PORT:80; a python3 client on the loopback connects, sends MIB MiB, shuts its
#      side down and waits for the server's reply and close (the reply must say MIB full 1 MiB records:
#      every byte arrived). One warm-up transfer, then TRANSFERS timed ones; prints each engine's
#      median MB/s (10^6 bytes/s), min, max, and berth/engine (no target: reported only).
# The machine's load average is printed at the start and the end: other work on the machine shows up in
# the numbers (the client, the server and the engines share its CPUs).
#
# Usage: bash bench/net.sh          (as root; a few minutes)
#   RUNS=N        timed `run --rm` runs per engine (default 20)
#   MIB=N         MiB per transfer (default 256)
#   TRANSFERS=N   timed transfers per engine (default 5)
#   KEEP=1        keep the work dir (logs, hyperfine JSON, transfer results)
# Needs root and cargo; hyperfine, skopeo, docker-registry, docker.io, podman, crun and busybox-static
# are installed with apt-get when missing. Refuses to run where firewalld runs.
# Everything is removed at the end, also on failure: containers, the namespace (with docker's and
# podman's bridges and rules), berthd's bridge and table, the processes started here (by PID).
set -euo pipefail
BENCH=net
RUNS=${RUNS:-20}
MIB=${MIB:-256}
TRANSFERS=${TRANSFERS:-5}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

bench_init
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_mount_hugetlb
bench_netns
say "starting berthd (host), dockerd and podman (namespace $BENCH_NETNS) and pulling $IMAGE into each store"
bench_start_berthd
bench_start_dockerd
bench_podman

# --- 1. run --rm IMAGE true -------------------------------------------------------------------------
IMG=$(quote "$IMAGE")
TOOLS=(berth docker-runc podman-crun)
declare -A CMD WHY
CMD[berth]="$(quote "${BERTH[@]}")run --rm $IMG true"
CMD[docker-runc]="$(quote "${DOCKER[@]}")run --rm $IMG true"
CMD[podman-crun]="$(quote "${PODMAN[@]}")run --rm --runtime crun $(quote "${PODMAN_RUN[@]}")$IMG true"

bench_time "${TOOLS[@]}"

# --- 2. throughput of a published port ----------------------------------------------------------------
cat > "$W/client.py" <<'PY'
# client.py PORT MIB COUNT OUT.json: connects to 127.0.0.1:PORT, sends MIB MiB, shuts down its side and
# reads the server's reply until the close; first until a 1 MiB transfer goes through (up to 30 s:
# the server may not listen yet), then once unmeasured, then COUNT times measured (MB/s into OUT.json).
import json, socket, sys, time
port, mib, count, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
block = memoryview(b"\0" * (1 << 20))

def transfer(n):
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        for _ in range(n):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    elapsed = time.perf_counter() - t0
    reply = reply.decode(errors="replace")
    if f"{n}+0 records in" not in reply:
        raise RuntimeError(f"the server did not get the {n} MiB: reply {reply.strip()!r}")
    return elapsed

deadline = time.monotonic() + 30
while True:
    try:
        transfer(1)
        break
    except (OSError, RuntimeError) as e:
        if time.monotonic() > deadline:
            sys.exit(f"no transfer through 127.0.0.1:{port} within 30 s: {e}")
        time.sleep(0.2)
transfer(mib)
rates = [mib * (1 << 20) / transfer(mib) / 1e6 for _ in range(count)]
json.dump({"rates": rates}, open(out, "w"))
PY
SERVER=(nc -ll -p 80 -e sh -c 'dd of=/dev/null bs=1M iflag=fullblock 2>&1')
BERTH_PORT=$(free_port 5180)
NS_PORT=8080   # the namespace's loopback is the bench's own
declare -A TPUT_WHY
TPUT=()
throughput() { # name port: a server container of that engine, the client's transfers to it
  local name=$1 port=$2 cli=() run=() client=() id=
  case $name in
    berth) cli=("${BERTH[@]}") ;;
    docker-runc) cli=("${DOCKER[@]}"); client=("${IN_NETNS[@]}") ;;
    podman-crun) cli=("${PODMAN[@]}"); run=(--runtime crun "${PODMAN_RUN[@]}"); client=("${IN_NETNS[@]}") ;;
  esac
  if ! id=$("${cli[@]}" run -d "${run[@]}" -p "127.0.0.1:$port:80" "$IMAGE" "${SERVER[@]}" 2> "$W/tput-$name.log"); then
    TPUT_WHY[$name]="the server did not start: $(tail -2 "$W/tput-$name.log" | tr '\n' ' ')"
  elif ! "${client[@]}" python3 "$W/client.py" "$port" "$MIB" "$TRANSFERS" "$W/tput-$name.json" 2>> "$W/tput-$name.log"; then
    TPUT_WHY[$name]=$(tail -2 "$W/tput-$name.log" | tr '\n' ' ')
  else
    TPUT+=("$name")
  fi
  [ -z "$id" ] || "${cli[@]}" rm -f "$id" >/dev/null 2>&1 || true
  if [ -n "${TPUT_WHY[$name]:-}" ]; then
    [ "$name" != berth ] || { tail -20 "$W/berthd.log" >&2; die "berth: ${TPUT_WHY[$name]}"; }
    say "$name throughput left out: ${TPUT_WHY[$name]}"
  fi
}
say "throughput: $TRANSFERS transfers of $MIB MiB to a published port on 127.0.0.1 per engine"
throughput berth "$BERTH_PORT"
throughput docker-runc "$NS_PORT"
throughput podman-crun "$NS_PORT"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------------------------------------
{
  echo "berth $("$BERTH_CLI" --version | sed 's/^berth version //') (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?))"
  echo "dockerd $("${DOCKER[@]}" version -f '{{.Server.Version}}'), $(containerd --version | awk '{print "containerd " $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
  echo "podman $(podman --version | awk '{print $3}'), network backend $("${PODMAN[@]}" info -f '{{.Host.NetworkBackend}}' 2>/dev/null || echo ?), crun $(crun --version | awk 'NR==1 {print $3}')"
  echo "kernel $(uname -r), $(nproc) CPUs; docker and podman in network namespace $BENCH_NETNS"
  echo "load average (1, 5, 15 min) at the start $LOAD_START, at the end $LOAD_END"
  for t in "${TOOLS[@]}"; do [ -z "${WHY[$t]:-}" ] || echo "$t not timed: ${WHY[$t]}"; done
  for t in "${TOOLS[@]}"; do [ -z "${TPUT_WHY[$t]:-}" ] || echo "$t throughput not measured: ${TPUT_WHY[$t]}"; done
  [ ${#PODMAN_RUN[@]} = 0 ] || echo "podman runs with ${PODMAN_RUN[*]} (no CAP_SYS_RESOURCE here)"
} > "$W/meta.txt"
python3 - "$W" "$REPO/bench" "$RUNS" "$IMAGE" "$MIB" "$TRANSFERS" "${TPUT[@]}" <<'PY'
import json, statistics, sys
w, bench, runs, image, mib, transfers, tput = *sys.argv[1:7], sys.argv[7:]
sys.dont_write_bytecode = True
sys.path.insert(0, bench)
from timing import load, table, targets
for line in open(f"{w}/meta.txt").read().splitlines():
    print(line)
results = load(f"{w}/run.json")
print(f"\n1. `run --rm {image} true`, each engine's default network: {runs} timed runs after 2 warm-up runs")
table(results)
targets(results, (("docker-runc", 0.3), ("podman-crun", 0.5)))
print(f"\n2. published port (-p 127.0.0.1:PORT:80), client on the loopback: {transfers} transfers of {mib} MiB"
      " after one warm-up, MB/s (10^6 bytes/s)")
rates = {t: json.load(open(f"{w}/tput-{t}.json"))["rates"] for t in tput}
print(f"{'engine':<12}{'median':>9}{'min':>9}{'max':>9}{'berth/engine':>16}   transfers")
for t, r in rates.items():
    m = statistics.median(r)
    ratio = f"{statistics.median(rates['berth']) / m:>16.2f}" if t != "berth" else " " * 16
    print(f"{t:<12}{m:>9.0f}{min(r):>9.0f}{max(r):>9.0f}{ratio}   " + " ".join(f"{x:.0f}" for x in r))
PY
