#!/usr/bin/env bash
# Grand Challenge algorithm job: /input -> /output with the model baked into the image (or the
# platform's model tarball, extracted to /opt/ml/model). Non-zero exit marks the job failed.
set -euo pipefail
MODEL="${MEDSWIN_MODEL:-/opt/ml/model/model.safetensors}"
exec medswin submit grand-challenge -i "${MEDSWIN_INPUT:-/input}" -o "${MEDSWIN_OUTPUT:-/output}" \
    -m "$MODEL" --device "${MEDSWIN_DEVICE:-cpu}" "$@"
