#!/usr/bin/env bash
# Submits the sharded stages (FD_STAGES, default "embed") as a Slurm job array of N tasks and the merge to run once all
# of them succeed.
#
#   FD_CONFIG=configs/cifar10-cpu.toml FD_RUN=/shared/runs/cifar10 jobs/slurm/submit.sh 8 [sbatch options...]
#
# Prints the two job ids. Extra arguments go to both sbatch calls (a partition, an account, a time limit).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shards="${1:?usage: submit.sh SHARDS [sbatch options...]}"
shift
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
  echo "submit.sh: SHARDS must be a positive number, got $shards" >&2
  exit 2
fi
: "${FD_CONFIG:?set FD_CONFIG to the experiment config}" "${FD_RUN:?set FD_RUN to the run directory}"
FD_CONFIG="$(realpath "$FD_CONFIG")"
mkdir -p "$FD_RUN"
FD_RUN="$(realpath "$FD_RUN")"
# Each task's shard is its array index of FD_SHARD_COUNT, so a task resubmitted alone (sbatch --array=3 with this
# environment) is still shard 3 of the job.
FD_SHARD_COUNT="$shards"
export FD_CONFIG FD_RUN FD_SHARD_COUNT
# The jobs run in this directory, so that paths in the config resolve as they do here; their logs go to the run directory.
array=$(sbatch --parsable --export=ALL --array="0-$((shards - 1))" --output="$FD_RUN/slurm-embed-%A_%a.out" "$@" \
  "$here/embed.sbatch")
# A failed task cancels the merge (it would wait forever otherwise); rerun the task, then submit merge.sbatch alone.
merge=$(sbatch --parsable --export=ALL --dependency="afterok:${array%%;*}" --kill-on-invalid-dep=yes \
  --output="$FD_RUN/slurm-merge-%j.out" "$@" \
  "$here/merge.sbatch")
echo "embed array: ${array%%;*} ($shards tasks); merge: ${merge%%;*}"
