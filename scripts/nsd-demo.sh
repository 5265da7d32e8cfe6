#!/bin/sh
# Runs the demo "public" DNS (NSD on 127.0.0.1:1054) in the foreground; Ctrl-C stops it.
# Usage, from the repository root:  scripts/nsd-demo.sh
# Then:  dig @127.0.0.1 -p 1054 ec2.us-west-2.amazonaws.com
set -eu
cd "$(dirname "$0")/.."
rundir=$(mktemp -d "${TMPDIR:-/tmp}/vpcdns-nsd.XXXXXX")
trap 'rm -rf "$rundir"' EXIT INT TERM
sed "s|@RUNDIR@|$rundir|g" config/nsd-demo.conf.in > "$rundir/nsd.conf"
nsd-checkconf "$rundir/nsd.conf"
nsd -d -c "$rundir/nsd.conf"
