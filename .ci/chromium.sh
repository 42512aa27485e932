#!/usr/bin/env bash
# Installs Chromium from Debian's packages when it is missing: the serve
# status page's browser test (cmd/bulkflow/internal/serve) drives it
# headless through chromedp. Idempotent and quiet; needs root (or sudo)
# only when it has to install.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))" >&2
  exit 0
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "chromium.sh: chromium is missing and this is not root (no sudo): apt-get install chromium" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))" >&2
