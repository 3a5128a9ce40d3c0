#!/bin/bash
# Two network namespaces joined by a delay line, for TAP tests (310):
#
#   A (10.231.0.1/24, ch_a) -- ch_ma [link_delay] ch_mb -- B (10.231.0.2/24, ch_b)
#
# This script runs in a network namespace of its own (the middle one) made
# by the caller: `unshare --net` when the caller has CAP_SYS_ADMIN and
# CAP_NET_ADMIN, else `unshare --user --map-current-user --keep-caps --net`.
# A and B are held by processes that read our standard input, as do
# link_delay and this script: when the test ends (or dies), the pipe closes
# and every one of them exits; nothing stays behind holding a namespace.
#
#   netns_link.sh STATE_DIR LINK_DELAY_BINARY
#
# STATE_DIR gets a.pid and b.pid (processes to nsenter), delay_us (one-way
# delay, link_delay re-reads it on SIGHUP), link_delay.pid, and ready.
set -eu
dir="$1"
bin="$2"

# (a background command's standard input would be /dev/null: pass ours on)
exec 3<&0
for side in a b; do
  unshare --net sh -c 'echo $$ > "$0"; exec cat >/dev/null' "$dir/$side.pid.tmp" <&3 &
done
for side in a b; do
  for _ in $(seq 1 100); do
    [ -s "$dir/$side.pid.tmp" ] && break
    sleep 0.05
  done
  mv "$dir/$side.pid.tmp" "$dir/$side.pid"
done
pa=$(cat "$dir/a.pid")
pb=$(cat "$dir/b.pid")
gid=$(id -g)

ip link set lo up
ip link add ch_a type veth peer name ch_ma
ip link add ch_b type veth peer name ch_mb
ip link set ch_a netns "$pa"
ip link set ch_b netns "$pb"
ip link set ch_ma up
ip link set ch_mb up
i=1
for p in "$pa" "$pb"; do
  dev=$([ "$p" = "$pa" ] && echo ch_a || echo ch_b)
  nsenter -t "$p" -n sh -c "
    ip link set lo up &&
    ip addr add 10.231.0.$i/24 dev $dev &&
    ip link set $dev up &&
    echo '$gid $gid' > /proc/sys/net/ipv4/ping_group_range"
  i=$((i + 1))
done

echo 0 > "$dir/delay_us"
"$bin" ch_ma ch_mb "$dir/delay_us" 2>>"$dir/link_delay.log" <&3 &
echo $! > "$dir/link_delay.pid"
echo ready > "$dir/ready"
# until standard input closes (the children see it too)
cat <&3 >/dev/null || true
wait
