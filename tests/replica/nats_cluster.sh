# nats_cluster.sh - a private three-node nats-server cluster with JetStream on
# loopback, for the replication tests and the bench (sourced).
#
#   nats_start DIR      starts nodes 1..3 (store and logs under DIR, random ports);
#                       sets NATS_URL (all three client URLs, comma-separated)
#   nats_kill I         kill -9 node I;   nats_restart I: starts it again (same ports, store)
#   nats_stop           stops every node (called from the caller's EXIT trap)
#   nats_wait_ready     waits until every node answers /healthz (JetStream ready)

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
NATS_DIR=
NATS_PIDS=(0 0 0 0)
NATS_PORTS=()
NATS_URL=

_nats_free_ports() { # N
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

nats_start() { # DIR
    NATS_DIR=$1
    mkdir -p "$NATS_DIR"
    # client, cluster and monitoring port per node
    read -r -a NATS_PORTS <<<"$(_nats_free_ports 9)"
    local i routes=""
    for i in 1 2 3; do
        routes="$routes nats-route://127.0.0.1:${NATS_PORTS[$((3 * (i - 1) + 1))]}"
    done
    NATS_URL=
    for i in 1 2 3; do
        local c=${NATS_PORTS[$((3 * (i - 1)))]} r=${NATS_PORTS[$((3 * (i - 1) + 1))]}
        local m=${NATS_PORTS[$((3 * (i - 1) + 2))]}
        mkdir -p "$NATS_DIR/n$i"
        cat >"$NATS_DIR/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$c
http: 127.0.0.1:$m
jetstream {
    store_dir: "$NATS_DIR/n$i"
    max_memory_store: 256MB
    max_file_store: 8GB
}
cluster {
    name: accrue-test
    listen: 127.0.0.1:$r
    routes: [$(echo $routes | sed 's/ /, /g')]
}
CONF
        NATS_URL="${NATS_URL:+$NATS_URL,}nats://127.0.0.1:$c"
        nats_restart "$i"
    done
    export NATS_URL
}

nats_restart() { # I
    local i=$1
    "$NATS_SERVER" -c "$NATS_DIR/n$i.conf" >>"$NATS_DIR/n$i.log" 2>&1 &
    NATS_PIDS[$i]=$!
}

nats_kill() { # I
    local i=$1
    if [ "${NATS_PIDS[$i]}" != 0 ]; then
        kill -9 "${NATS_PIDS[$i]}" 2>/dev/null
        wait "${NATS_PIDS[$i]}" 2>/dev/null
        NATS_PIDS[$i]=0
    fi
}

nats_stop() {
    local i
    for i in 1 2 3; do
        if [ "${NATS_PIDS[$i]}" != 0 ]; then
            kill "${NATS_PIDS[$i]}" 2>/dev/null
        fi
    done
    for i in 1 2 3; do
        if [ "${NATS_PIDS[$i]}" != 0 ]; then
            wait "${NATS_PIDS[$i]}" 2>/dev/null
            NATS_PIDS[$i]=0
        fi
    done
}

nats_wait_ready() { # [SECONDS]
    local deadline=$((SECONDS + ${1:-30})) i m ok
    while [ $SECONDS -lt $deadline ]; do
        ok=0
        for i in 1 2 3; do
            m=${NATS_PORTS[$((3 * (i - 1) + 2))]}
            curl -fs "http://127.0.0.1:$m/healthz" >/dev/null 2>&1 && ok=$((ok + 1))
        done
        [ $ok -eq 3 ] && return 0
        sleep 0.2
    done
    return 1
}
