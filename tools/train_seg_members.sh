#!/usr/bin/env bash
# Train the members of one `lungai train-seg` run in parallel, one process per member (train-seg --member K),
# e.g. on an accelerator from a --save-arrays file. Saving + calibrating is a separate step: the same train-seg
# command without --member (and without --from-arrays), with --resume, where the source data is.
#
# usage: tools/train_seg_members.sh MEMBERS LOGDIR -- <train-seg arguments>
#   PYTHON (default python3) runs `-m lungai`; LUNGAI_TIME_LIMIT (seconds, default none) stops every member
#   process at that wall time (an unfinished member resumes later with --resume from its last epoch).
# example (docs/segmentation.md, "Training on an accelerator"):
#   tools/train_seg_members.sh 3 logs -- --images I --masks M --arch dynunet ... --from-arrays seg.npz \
#       --device cuda --workers 4 -o run
set -u
if [ $# -lt 3 ] || [ "$3" != "--" ]; then
  echo "usage: $0 MEMBERS LOGDIR -- <train-seg arguments>" >&2
  exit 2
fi
members=$1
logdir=$2
shift 3
case "$members" in '' | *[!0-9]*) echo "MEMBERS must be a number, got '$members'" >&2; exit 2 ;; esac
mkdir -p "$logdir"
limit=()
if [ -n "${LUNGAI_TIME_LIMIT:-}" ]; then limit=(timeout "$LUNGAI_TIME_LIMIT"); fi
pids=()
for ((k = 0; k < members; k++)); do
  "${limit[@]}" "${PYTHON:-python3}" -m lungai train-seg "$@" --members "$members" --member "$k" \
    >"$logdir/member_$k.log" 2>&1 &
  pids+=($!)
done
rc=0
for k in "${!pids[@]}"; do
  if ! wait "${pids[$k]}"; then
    echo "member $k failed or was stopped: see $logdir/member_$k.log" >&2
    rc=1
  fi
done
exit $rc
