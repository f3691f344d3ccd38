#!/usr/bin/env bash
# Sets up a single-node Slurm cluster (munge + slurmctld + slurmd) on this machine, for the
# controller benchmark's Slurm anchor. Idempotent: re-running it re-uses what is installed and
# running. Needs root (apt-get, /etc/slurm). Never fails the caller: if something cannot be done
# it prints why and exits 0, and the benchmark then reports "slurm: not available".
#
# No systemd is assumed: the daemons are started directly and run in the background.
set -u

say() { echo "[slurm-setup] $*"; }
give_up() { say "cannot set up Slurm: $*"; exit 0; }

if [ "$(id -u)" != 0 ]; then give_up "must run as root"; fi

# 1. packages
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  say "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || give_up "apt-get update failed"
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/tmp/slurm-apt.log 2>&1 \
    || give_up "apt-get install failed (see /tmp/slurm-apt.log)"
fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(free -m | awk '/^Mem:/ {print $2}')
REAL_MEM=$(( MEM_MB > 1024 ? MEM_MB - 512 : MEM_MB ))

# 2. munge
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  say "creating munge key"
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
if id munge >/dev/null 2>&1; then
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
  MUNGE_USER=munge
else
  MUNGE_USER=root
fi
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  rm -f /run/munge/munged.pid
  if [ "$MUNGE_USER" = munge ]; then
    su -s /bin/sh munge -c "munged" || give_up "munged did not start"
  else
    munged --force || give_up "munged did not start"
  fi
  sleep 1
  munge -n </dev/null | unmunge >/dev/null 2>&1 || give_up "munge does not work"
fi

# 3. slurm.conf (single node; rewritten only when it changes)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
SLURM_USER=root
CONF=$(cat <<CONFEOF
# Written by bench/slurm/setup.sh: a single-node cluster with default scheduling settings.
ClusterName=bench
SlurmctldHost=${HOST}
SlurmUser=${SLURM_USER}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${HOST} CPUs=${CPUS} RealMemory=${REAL_MEM} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONFEOF
)
if [ ! -f /etc/slurm/slurm.conf ] || [ "$(cat /etc/slurm/slurm.conf)" != "$CONF" ]; then
  say "writing /etc/slurm/slurm.conf (node ${HOST}, CPUs=${CPUS}, RealMemory=${REAL_MEM})"
  printf '%s\n' "$CONF" >/etc/slurm/slurm.conf
  RESTART=1
else
  RESTART=0
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# 4. daemons
if [ "$RESTART" = 1 ]; then
  for p in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid; do
    if running "$p"; then kill "$(cat "$p")"; sleep 1; fi
  done
fi
if ! running /run/slurm/slurmctld.pid; then
  say "starting slurmctld"
  slurmctld || give_up "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
fi
if ! running /run/slurm/slurmd.pid; then
  say "starting slurmd"
  slurmd || give_up "slurmd did not start (see /var/log/slurm/slurmd.log)"
fi

# 5. wait until the node is idle and a job runs
for _ in $(seq 1 30); do
  state=$(sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -1)
  case "$state" in idle*|mix*|alloc*) break ;; esac
  scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
  sleep 1
done
state=$(sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -1)
case "$state" in
  idle*|mix*|alloc*) ;;
  *) give_up "node ${HOST} is '${state:-unknown}', not idle (see /var/log/slurm/*.log)" ;;
esac
if ! timeout 60 srun -N1 -n1 /bin/true >/dev/null 2>&1; then
  give_up "a test job (srun /bin/true) did not run"
fi
say "ready: single-node cluster on ${HOST} (${CPUS} CPUs, ${REAL_MEM} MB)"
