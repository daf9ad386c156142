#!/usr/bin/env bash
# Render a demo report to PNG (the README picture) with headless Chromium (Debian: apt-get install chromium).
#   bash tools/report_screenshot.sh lungai-demo/report.html Resources/Screenshots/report.png
set -euo pipefail
html=$(realpath "$1"); out=$2; height=${3:-4200}
mkdir -p "$(dirname "$out")"
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1100,"$height" --screenshot="$(realpath -m "$out")" "file://$html" >/dev/null 2>&1
rm -rf "$profile"
echo "wrote $out"
