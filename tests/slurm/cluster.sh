#!/bin/bash
# A one-node Slurm cluster for the tests, on this machine, as root:
#   cluster.sh start DIR    munged, slurmctld and slurmd with everything
#                           (key, configuration, state, logs) under DIR;
#                           prints the SLURM_CONF to use
#   cluster.sh stop DIR     stops them by process id
# Needs Debian's slurm-wlm and munge (the README's test command installs
# them). Exit status 1 with a message saying what is missing otherwise.
set -u
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: cluster.sh start|stop DIR" >&2; exit 2; }
stop() {
  for p in slurmd slurmctld munged; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null
  done
  for i in $(seq 50); do
    alive=0
    for p in slurmd slurmctld munged; do
      [ -f "$dir/$p.pid" ] && kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for p in slurmd slurmctld munged; do [ -f "$dir/$p.pid" ] && kill -9 "$(cat "$dir/$p.pid")" 2>/dev/null; done
  return 0
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "a test Slurm cluster needs root (slurmd runs jobs as their users)" >&2; exit 1; }
for b in munged slurmctld slurmd sbatch squeue scontrol; do
  command -v $b >/dev/null || { echo "no $b on the PATH: install Debian's slurm-wlm and munge (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" || {
  echo "munged did not start: $(tail -3 "$dir/munged.log" 2>/dev/null)" >&2; exit 1; }
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
# Ports: two free ones near 20000 + our pid.
base=$(( 20000 + ($$ % 20000) ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=lumpytest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=5
SchedulerParameters=defer
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -c -f "$dir/slurm.conf" || { echo "slurmctld did not start: $(tail -3 "$dir/slurmctld.log")" >&2; stop; exit 1; }
slurmd -f "$dir/slurm.conf" || { echo "slurmd did not start: $(tail -3 "$dir/slurmd.log")" >&2; stop; exit 1; }
for i in $(seq 100); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then echo "$SLURM_CONF"; exit 0; fi
  sleep 0.1
done
echo "the node did not come up: $(sinfo 2>&1 | tail -2); $(tail -3 "$dir/slurmctld.log")" >&2
stop
exit 1
