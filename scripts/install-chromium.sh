#!/usr/bin/env bash
# Install Debian's Chromium for the dashboard's browser test, when it is missing and apt can install it.
# Idempotent, and never fails `make setup`: without Chromium the browser test is skipped with the reason.
set -u

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "chromium: present ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: missing, and apt-get is not available here; the browser test will be skipped"
    exit 0
fi
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "chromium: missing, and installing it needs root (sudo); the browser test will be skipped"
        exit 0
    fi
fi
echo "chromium: installing the Debian package"
if $SUDO apt-get update -qq >/dev/null 2>&1 \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    && [[ -x "$CHROMIUM" ]]; then
    echo "chromium: installed ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
else
    echo "chromium: could not be installed with apt; the browser test will be skipped"
fi
exit 0
