#!/bin/bash
# Multi-node training under SLURM: one task per GPU; Lightning reads SLURM's environment (ranks, master
# address), so the command is the one you run on one machine. Submit with:  sbatch configs/scale/slurm.sh
#SBATCH --job-name=s2s
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --signal=SIGUSR1@90     # Lightning saves a checkpoint and requeues the job before the time limit
#SBATCH --requeue
set -euo pipefail
CONFIG=${CONFIG:-configs/lm/qwen2.5-0.5b-mimi.yaml}
# A requeued job resumes by itself: with no --ckpt_path, Lightning loads the hpc_ckpt_N.ckpt it saved in the
# run folder on SIGUSR1. To continue a run that stopped some other way, submit with RESUME=last
# (checkpoints/last.ckpt): sbatch --export=ALL,RESUME=last configs/scale/slurm.sh
srun s2s fit --config "$CONFIG" --config configs/scale/ddp.yaml \
  --trainer.num_nodes "$SLURM_NNODES" --trainer.devices "$SLURM_NTASKS_PER_NODE" ${RESUME:+--ckpt_path "$RESUME"}
