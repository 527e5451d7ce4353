#!/usr/bin/env bash
# The Debian packages the tests use: sqlite3 (the manual-recovery check and the scripted
# benchmark baseline), chromium + chromium-driver (browser tests), time (peak RSS),
# postgresql (initdb + pg_ctl: the tests start a throwaway server for DATABASE_URL).
# Installs the missing ones when it can (root, or sudo without a password); otherwise says
# what is missing: those tests then skip locally (under CI=true they fail instead).
set -euo pipefail

packages=(sqlite3 chromium chromium-driver time postgresql)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("${package}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "$(id -u)" -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "missing Debian packages: ${missing[*]} (install: sudo apt-get install ${missing[*]});" \
       "the tests that need them will be skipped" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
