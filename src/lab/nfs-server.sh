#!/bin/sh
# The lab's NFS server: rpcbind + nfs-ganesha, run by miglab inside the src namespace as
#   ip netns exec NS nfs-server.sh SERVER_IP GANESHA_CONF GANESHA_LOG LAB_DIR EXPORT_DIR
# `ip netns exec` gives this process its own mount namespace (slave propagation). A private
# tmpfs on /run hides the machine's /run, so the rpcbind started here cannot meet (or remove)
# the socket and lock file of an rpcbind the user may run. The lab and export directories are
# carried over into the new /run through open descriptors when they live under /run.
# Stopping this script (TERM/INT) stops both servers; miglab records this script's pid.
# Nothing listens on a wildcard address: rpcbind's TCP sockets come from socket-activate.pl
# (next to this script), its UDP ones from -h; ganesha binds SERVER_IP (Bind_Addr).
set -eu

if [ "$#" -ne 5 ]; then
  echo "usage: $0 SERVER_IP GANESHA_CONF GANESHA_LOG LAB_DIR EXPORT_DIR" >&2
  exit 2
fi
server_ip=$1
conf=$2
log=$3
lab_dir=$4
export_dir=$5
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac

exec 3<"$lab_dir"
exec 4<"$export_dir"
mount -t tmpfs -o mode=0755,size=16m miglab-nfs-run /run
mkdir -p /run/ganesha /run/rpcbind
# --no-canonicalize: resolving /proc/self/fd/N to its path would find the new, empty /run.
case "$lab_dir" in /run/*) mkdir -p "$lab_dir" && mount --no-canonicalize --bind /proc/self/fd/3 "$lab_dir" ;; esac
case "$export_dir" in
  "$lab_dir"/*) ;;
  /run/*) mkdir -p "$export_dir" && mount --no-canonicalize --bind /proc/self/fd/4 "$export_dir" ;;
esac
exec 3<&- 4<&-

rpcbind_pid=
ganesha_pid=
stop() {
  trap - TERM INT
  if [ -n "$ganesha_pid" ]; then kill -TERM "$ganesha_pid" 2>/dev/null || true; fi
  if [ -n "$rpcbind_pid" ]; then kill -TERM "$rpcbind_pid" 2>/dev/null || true; fi
  wait || true
  exit "$1"
}
trap 'stop 0' TERM INT

# rpcbind binds UDP to the -h addresses (and loopback) but TCP always to 0.0.0.0:111 and
# [::]:111, unless it is handed TCP sockets by socket activation: it uses those and makes only
# the transports it did not get. So the activator binds tcp to the server's address and tcp6 to
# ::1 (nothing on the lab network speaks IPv6 to it), then execs rpcbind in the same process, so
# $rpcbind_pid is rpcbind's own pid.
perl "$here/socket-activate.pl" "tcp:$server_ip:111" "tcp6:[::1]:111" -- rpcbind -f -h "$server_ip" &
rpcbind_pid=$!
# ganesha registers with rpcbind at start: wait for rpcbind's socket (5 s at most).
tries=0
while [ ! -S /run/rpcbind.sock ]; do
  if ! kill -0 "$rpcbind_pid" 2>/dev/null; then
    echo "rpcbind exited while starting (its message is above)" >&2
    stop 1
  fi
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ]; then
    echo "rpcbind did not create /run/rpcbind.sock within 5 s" >&2
    stop 1
  fi
  sleep 0.05
done

ganesha.nfsd -F -L "$log" -p /run/ganesha/ganesha.pid -f "$conf" &
ganesha_pid=$!

# Whichever server dies first takes the other down, so a dead half never looks alive.
while kill -0 "$rpcbind_pid" 2>/dev/null && kill -0 "$ganesha_pid" 2>/dev/null; do
  sleep 0.5 &
  wait $! || true
done
echo "an NFS server process exited; stopping the other" >&2
stop 1
