#!/bin/sh
# A stand-in stage: writes $2 into file $1 and reports it, with its SHA-256, in the stage
# result document runplane reads when the job succeeds ($RUNPLANE_STAGE_RESULT). Extra
# stage-event fields (JSON members) may follow as $3, e.g. '"games_generated": 64'.
set -eu
out="$1"
printf '%s\n' "$2" > "$out"
sum=$(sha256sum "$out" | cut -d' ' -f1)
extra="${3:-}"
printf '{%s"outputs":[{"path":"%s","sha256":"%s"}]}\n' "${extra:+$extra,}" "$out" "$sum" > "$RUNPLANE_STAGE_RESULT"
echo "$RUNPLANE_STAGE wrote $out ($sum)"
