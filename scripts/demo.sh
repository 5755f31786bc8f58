#!/usr/bin/env bash
# Install objfs, mount a local folder used as a bucket, and show it working end to end:
# a file written through the mount appears as an object in the folder, then unmount.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

bucket=${OBJFS_DEMO_BUCKET:-/srv/objfs-demo-bucket}
mountpoint=${OBJFS_DEMO_MOUNT:-/mnt/objfs-demo}
mkdir -p "$bucket" "$mountpoint"
objfs=.venv/bin/objfs

set -x
$objfs mount "local://$bucket" "$mountpoint"
echo "hello from objfs, $(date -u)" > "$mountpoint/hello.txt"
mkdir -p "$mountpoint/photos/2024"
cp /etc/os-release "$mountpoint/photos/2024/os-release.txt"
ls -lR "$mountpoint"
cat "$mountpoint/hello.txt"
find "$bucket" -path "$bucket/.objfs" -prune -o -type f -print
$objfs umount "$mountpoint"
set +x
echo "objfs works: the files above are plain objects (files) in $bucket"
