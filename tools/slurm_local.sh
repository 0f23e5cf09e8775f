#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages, for the sharded-job test (FD_TEST_SLURM=1).
#
#   tools/slurm_local.sh install       # apt-get install slurmctld slurmd slurm-client munge (root)
#   tools/slurm_local.sh start DIR     # config, state and logs under DIR; prints `export SLURM_CONF=DIR/slurm.conf`
#   tools/slurm_local.sh stop DIR
#
# Everything listens on the loopback address only (slurmctld on 127.0.0.1:6817, slurmd on 6818); the daemons run as
# root, with munge's key created if the machine has none. `start` returns once the node is idle.
set -euo pipefail

cmd="${1:?usage: slurm_local.sh install|start DIR|stop DIR}"
case "$cmd" in
  install)
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    fi
    ;;
  start)
    dir="$(realpath -m "${2:?usage: slurm_local.sh start DIR}")"
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    host="$(hostname -s)"
    cpus="$(nproc)"
    memory="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))"
    cat >"$dir/slurm.conf" <<EOF
ClusterName=fdlocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ ! -s /etc/munge/munge.key ]]; then
      mkdir -p /etc/munge
      if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force; else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
      chmod 600 /etc/munge/munge.key
    fi
    munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
      --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 1 60); do
      if sinfo -h -o '%t' 2>/dev/null | grep -q '^idle'; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
      fi
      sleep 1
    done
    echo "slurm_local: the node did not come up within 60 s; logs in $dir" >&2
    tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    exit 1
    ;;
  stop)
    dir="$(realpath -m "${2:?usage: slurm_local.sh stop DIR}")"
    pids=()
    for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
      if [[ -s "$pid" ]]; then
        pids+=("$(cat "$pid")")
        kill "${pids[-1]}" 2>/dev/null || true
      fi
    done
    # Gone before returning, so that the next start finds its ports free.
    for _ in $(seq 1 50); do
      alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [[ $alive == 0 ]] && break
      sleep 0.2
    done
    ;;
  *)
    echo "usage: slurm_local.sh install|start DIR|stop DIR" >&2
    exit 2
    ;;
esac
