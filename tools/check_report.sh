#!/usr/bin/env bash
# Renders a report.html in headless Chromium (Debian's `chromium` package) and checks that every image decoded and every plot drew:
# the report's own load handler writes what it found into <body data-check=... data-images=... data-plots=...>, which the DOM dump shows.
# usage: tools/check_report.sh REPORT.html [SCREENSHOT.png]
set -euo pipefail
report=$(realpath "$1")
shot=${2:-}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "check_report: no Chromium found (install Debian's package: apt-get install chromium)" >&2
  exit 2
fi
flags=(--headless=new --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=15000)
dom=$("$browser" "${flags[@]}" --dump-dom "file://$report" 2>/dev/null)
body=$(grep -o '<body[^>]*>' <<<"$dom" | head -n 1 || true)
echo "check_report: $body"
if [ -n "$shot" ]; then
  "$browser" "${flags[@]}" --window-size=1200,3000 --screenshot="$(realpath -m "$shot")" "file://$report" >/dev/null 2>&1
  echo "check_report: screenshot in $shot"
fi
if ! grep -q 'data-check="ok"' <<<"$body"; then
  echo "check_report: $report did not render completely (images or plots missing)" >&2
  exit 1
fi
