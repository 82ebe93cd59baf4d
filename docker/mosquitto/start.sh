#!/bin/sh
# Starts Mosquitto in the compose stack from the files that the broker-config
# one-shot (`emissions broker render --out /mosquitto-config`) rendered.
#
# The render runs as the service user (uid 10001), so the files it writes are
# owned by that user. Mosquitto 2 reads its password and ACL files after
# dropping to its own user (uid 1883), and warns about (future versions:
# refuses) files it does not own or that others can read. So this script, still
# root, copies the rendered directory from the read-only shared volume to the
# same path in the container (the absolute paths inside mosquitto.conf stay
# valid), hands the copy to the mosquitto user with owner-only modes, and execs
# the broker, which then drops privileges. It runs on every container start,
# so a re-render (new gateway in the park file) is picked up by a restart.
set -eu

src=/mosquitto-render
dst=/mosquitto-config
data=/mosquitto/data

if [ ! -s "$src/mosquitto.conf" ]; then
    echo "start.sh: $src/mosquitto.conf is missing: the broker-config service must run first" >&2
    exit 1
fi

rm -rf "$dst"
mkdir -p "$dst"
cp -R "$src/." "$dst/"

# Persistent sessions and queued QoS 1 messages must survive a container
# re-creation, so persistence goes to the data volume whatever directory the
# render chose for a native install (a global option: its place in the file
# does not matter).
if grep -Eq '^[[:space:]]*persistence_location[[:space:]]' "$dst/mosquitto.conf"; then
    sed -i -E "s|^[[:space:]]*persistence_location[[:space:]].*|persistence_location $data/|" \
        "$dst/mosquitto.conf"
else
    printf '\npersistence_location %s/\n' "$data" >>"$dst/mosquitto.conf"
fi

mkdir -p "$data"
chown -R mosquitto:mosquitto "$dst" "$data"
chmod -R u=rwX,go= "$dst" "$data"

# Relative paths in the rendered file resolve against its own directory.
cd "$dst"
exec /usr/sbin/mosquitto -c "$dst/mosquitto.conf"
