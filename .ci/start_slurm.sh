#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for the SLURM batch test
# (tests/batch/test_batch_slurm.py); idempotent.
#
# - installs Debian's slurm-wlm and munge with apt-get when slurmctld/slurmd/munged are missing;
# - writes /etc/slurm/slurm.conf for this host (its CPU count from nproc, its memory from
#   /proc/meminfo; slurmctld and slurmd run as root, ProctrackType=proctrack/linuxproc,
#   TaskPlugin=task/none, no accounting, daemons listening on 127.0.0.1) unless a slurm.conf not
#   written by this script is there;
# - starts munged, slurmctld and slurmd unless they are running, and waits until `sinfo` shows
#   the node idle (at most $SLURM_START_TIMEOUT seconds, default 60);
# - prints one status line. It exits 0 even when SLURM cannot start (after saying why), so that
#   CI goes on; the SLURM test then skips itself, saying why.
#
# Logs: $CELLFIT_SLURM_LOGS (default /tmp/cellfit-slurm): apt.log, slurmctld.log, slurmd.log.
set -uo pipefail

T0=$(date +%s.%N)
LOGS=${CELLFIT_SLURM_LOGS:-/tmp/cellfit-slurm}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
MARK="# written by cellfit .ci/start_slurm.sh"
mkdir -p "$LOGS" 2>/dev/null || LOGS=$(mktemp -d)

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
give_up() { echo "start_slurm: SLURM not started: $*; the SLURM tests will be skipped ($(elapsed) s)"; exit 0; }
node_state() { timeout 5 sinfo --noheader --Node --format=%t 2>/dev/null | head -n 1; }

# a SLURM cluster not configured by this script (a real one) that is up: use it as it is
if command -v sinfo >/dev/null 2>&1 && [ -e "$CONF" ] && ! grep -qsF "$MARK" "$CONF" \
        && [ "$(node_state)" = "idle" ]; then
    echo "start_slurm: SLURM already up: $(sinfo --noheader --Node --format='%N %t, %c CPUs, %m MB' | head -n 1) ($(elapsed) s)"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
elif command -v sinfo >/dev/null 2>&1 && [ "$(node_state)" = "idle" ]; then
    echo "start_slurm: SLURM up: $(sinfo --noheader --Node --format='%N %t, %c CPUs, %m MB' | head -n 1) (not root: used as it is) ($(elapsed) s)"
    exit 0
else
    give_up "needs root (or password-less sudo) to install and run slurmctld/slurmd"
fi

# 1. packages
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 \
        || ! command -v munged >/dev/null 2>&1 || ! command -v sinfo >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || give_up "slurmctld/slurmd/munged are not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends slurm-wlm munge >"$LOGS/apt.log" 2>&1; then
        "${SUDO[@]}" apt-get update -q >>"$LOGS/apt.log" 2>&1
        "${SUDO[@]}" apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$LOGS/apt.log" 2>&1 \
            || give_up "apt-get install slurm-wlm munge failed (see $LOGS/apt.log)"
    fi
fi

# 2. slurm.conf for this host
HOST=$(hostname -s)
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    give_up "$CONF exists and was not written by this script (left as it is)"
fi
# this host's CPUs and memory in MB (what `slurmd -C` reports, read the same way every time so
# that an unchanged host gives an unchanged slurm.conf)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)
NEW=$(mktemp)
cat >"$NEW" <<EOF
$MARK
# A single-node cluster on this host for tests: daemons as root, no cgroups, no accounting.
ClusterName=cellfit-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
# daemons listen on 127.0.0.1 only (the addresses of SlurmctldHost and NodeAddr)
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
KillWait=5
InactiveLimit=0
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
CHANGED=0
if ! cmp -s "$NEW" "$CONF" 2>/dev/null; then
    "${SUDO[@]}" mkdir -p /etc/slurm && "${SUDO[@]}" cp "$NEW" "$CONF" && "${SUDO[@]}" chmod 644 "$CONF" \
        || give_up "cannot write $CONF"
    CHANGED=1
fi
rm -f "$NEW"
"${SUDO[@]}" mkdir -p /var/spool/slurmctld /var/spool/slurmd

# 3. munge (authentication between the SLURM commands and daemons)
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
        "${SUDO[@]}" mkdir -p /etc/munge
        if command -v mungekey >/dev/null 2>&1; then
            "${SUDO[@]}" mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1
        else
            "${SUDO[@]}" dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    "${SUDO[@]}" mkdir -p /run/munge /var/log/munge /var/lib/munge
    "${SUDO[@]}" chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null
    "${SUDO[@]}" chmod 0400 /etc/munge/munge.key
    "${SUDO[@]}" chmod 0755 /run/munge
    "${SUDO[@]}" runuser -u munge -- /usr/sbin/munged >>"$LOGS/munged.log" 2>&1 \
        || "${SUDO[@]}" /usr/sbin/munged --force >>"$LOGS/munged.log" 2>&1
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || give_up "munged does not answer (see $LOGS/munged.log)"
fi

# 4. slurmctld and slurmd (restarted when slurm.conf changed)
running() { pgrep -x "$1" >/dev/null 2>&1; }
if [ "$CHANGED" = 1 ]; then
    for d in slurmd slurmctld; do
        running "$d" || continue
        PID=$(cat "/run/$d.pid" 2>/dev/null) || give_up "a $d runs without /run/$d.pid (not started with this slurm.conf)"
        "${SUDO[@]}" kill "$PID"
        for _ in $(seq 60); do running "$d" || break; sleep 0.25; done
        running "$d" && give_up "$d (started before with another slurm.conf) did not stop within 15 s"
    done
fi
STARTED=""
for d in slurmctld slurmd; do
    running "$d" && continue
    "${SUDO[@]}" "$d" >>"$LOGS/$d.out" 2>&1 || give_up "$d did not start (see $LOGS/$d.log, $LOGS/$d.out)"
    STARTED="${STARTED:-started} $d"
done

# 5. wait until the node is idle
STATE=""
DEADLINE=$(($(date +%s) + TIMEOUT))
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    STATE=$(node_state)
    [ "$STATE" = "idle" ] && break
    case "$STATE" in
        down*|drain*|drng*|fail*) "${SUDO[@]}" scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 ;;
    esac
    sleep 0.25
done
[ "$STATE" = "idle" ] || give_up "node $HOST is '${STATE:-not listed by sinfo}' after ${TIMEOUT} s (see $LOGS/slurmctld.log, $LOGS/slurmd.log)"
echo "start_slurm: SLURM $(sinfo --version | awk '{ print $2 }') up: node $HOST idle, $CPUS CPUs, $MEM MB," \
    "partition debug, ${STARTED:-already running} ($(elapsed) s)"
exit 0
