#!/usr/bin/env bash
# System packages that the GUI and browser tests need on Debian/Ubuntu: headless Chromium and
# chromedriver (tests/web), and Xvfb plus the OpenGL, font and GLib libraries for napari's canvas
# (tests/napari run on a virtual X display that pytest-xvfb starts). Does nothing when Chromium,
# chromedriver and Xvfb are already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    && command -v Xvfb >/dev/null 2>&1; then
    exit 0
fi
pkgs=(chromium chromium-driver xvfb libgl1 libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1 libxkbcommon0 libdbus-1-3)
sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get install -y -q "${pkgs[@]}" >/dev/null \
    || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "${pkgs[@]}" >/dev/null; }
echo "system packages for the GUI and browser tests: installed (${pkgs[*]})"
