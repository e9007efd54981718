#!/usr/bin/env bash
# Installs Debian's Chromium for the real-browser tests (test/browser/), which drive
# it with playwright-core through executablePath /usr/bin/chromium. Playwright's own
# browser downloads are never used. Idempotent: does nothing when it is there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser.sh: /usr/bin/chromium is missing and apt-get is not available;" >&2
  echo "install Chromium with your package manager (or set CHROMIUM_PATH for the tests)." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-browser.sh: run as root (or install sudo) to apt-get install chromium." >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
