#!/usr/bin/env bash
# Deploys infrastructure/main-infrastructure.yaml with CloudFormation.
#
#   ./deploy.sh                               interactive: asks, writes parameters.<env>.json, deploys
#   ./deploy.sh deploy PARAMETERS.json        deploys with a parameters file (CloudFormation's format)
#   ./deploy.sh validate                      cfn-lint (always); validate-template when credentials work
#   ./deploy.sh outputs [ENVIRONMENT]         the stack's outputs (URLs, bucket names, ARNs)
#   ./deploy.sh delete ENVIRONMENT            deletes the stack (buckets and EFS are retained)
#
# Environment: AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE as usual; STACK_NAME overrides
# the stack name (default drawing-analysis-<Environment>); CFN_LINT the cfn-lint to run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${here}/.." && pwd)"
template="${here}/main-infrastructure.yaml"

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}
info() { echo "==> $*" >&2; }

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

require() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed ($2)"
}

find_cfn_lint() {
  if [[ -n "${CFN_LINT:-}" ]]; then
    echo "${CFN_LINT}"
  elif [[ -x "${repo_root}/.venv/bin/cfn-lint" ]]; then
    echo "${repo_root}/.venv/bin/cfn-lint"
  elif command -v cfn-lint >/dev/null 2>&1; then
    command -v cfn-lint
  else
    die "cfn-lint not found: run 'make venv' (it installs cfn-lint into .venv) or set CFN_LINT"
  fi
}

# True when the AWS CLI can authenticate; never waits on the instance metadata service.
have_credentials() {
  command -v aws >/dev/null 2>&1 || return 1
  AWS_EC2_METADATA_DISABLED=true timeout 30 \
    aws sts get-caller-identity --cli-connect-timeout 5 --cli-read-timeout 10 \
    >/dev/null 2>&1
}

cmd_validate() {
  local cfn_lint
  cfn_lint="$(find_cfn_lint)"
  info "cfn-lint ${template#"${repo_root}/"}"
  "${cfn_lint}" "${template}"
  info "cfn-lint: no errors or warnings"
  if have_credentials; then
    info "aws cloudformation validate-template"
    if [[ "$(wc -c <"${template}")" -le 51200 ]]; then
      aws cloudformation validate-template --template-body "file://${template}" >/dev/null
    else
      validate_through_bucket
    fi
    info "validate-template: ok"
  else
    info "validate-template skipped: no usable AWS credentials (offline check only)"
  fi
}

# Templates over 51,200 bytes must be read from S3; the deployment bucket holds them.
validate_through_bucket() {
  local bucket key
  bucket="$(ensure_artifact_bucket)"
  key="templates/validate-$(date -u +%Y%m%d%H%M%S).yaml"
  aws s3 cp --only-show-errors "${template}" "s3://${bucket}/${key}"
  aws cloudformation validate-template \
    --template-url "https://${bucket}.s3.$(region).amazonaws.com/${key}" >/dev/null
}

region() {
  local value="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  [[ -n "${value}" ]] || value="$(aws configure get region 2>/dev/null || true)"
  [[ -n "${value}" ]] || die "no AWS region: set AWS_REGION (e.g. export AWS_REGION=eu-west-1)"
  echo "${value}"
}

# A private, encrypted bucket for templates (the template is larger than CloudFormation's
# 51,200-byte inline limit). Created once per account and region.
ensure_artifact_bucket() {
  local account bucket
  account="$(aws sts get-caller-identity --query Account --output text)"
  bucket="drawing-analysis-deploy-${account}-$(region)"
  if ! aws s3api head-bucket --bucket "${bucket}" >/dev/null 2>&1; then
    info "creating deployment bucket ${bucket}"
    if [[ "$(region)" == "us-east-1" ]]; then
      aws s3api create-bucket --bucket "${bucket}" >/dev/null
    else
      aws s3api create-bucket --bucket "${bucket}" \
        --create-bucket-configuration "LocationConstraint=$(region)" >/dev/null
    fi
    aws s3api put-public-access-block --bucket "${bucket}" --public-access-block-configuration \
      BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
    aws s3api put-bucket-encryption --bucket "${bucket}" --server-side-encryption-configuration \
      '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
    aws s3api put-bucket-lifecycle-configuration --bucket "${bucket}" --lifecycle-configuration \
      '{"Rules":[{"ID":"expire-templates","Status":"Enabled","Filter":{"Prefix":""},"Expiration":{"Days":30}}]}'
  fi
  echo "${bucket}"
}

# Prints "Key=Value" lines from a CloudFormation parameters file ([{ParameterKey, ParameterValue}]).
parameter_overrides() {
  python3 - "$1" <<'PY'
import json, sys
path = sys.argv[1]
try:
    entries = json.load(open(path, encoding="utf-8"))
except (OSError, ValueError) as exc:
    sys.exit(f"deploy.sh: cannot read parameters file {path}: {exc}")
if not isinstance(entries, list):
    sys.exit(f"deploy.sh: {path}: expected a JSON list of {{ParameterKey, ParameterValue}}")
for entry in entries:
    if not isinstance(entry, dict) or "ParameterKey" not in entry or "ParameterValue" not in entry:
        sys.exit(f"deploy.sh: {path}: every entry needs ParameterKey and ParameterValue: {entry!r}")
    print(f"{entry['ParameterKey']}={entry['ParameterValue']}")
PY
}

# Every value against the template's constraints, and BackupExpiryDays >= BackupGlacierDays
# + 90 (CloudFormation rules cannot compare two numbers), before any AWS call.
check_parameters() {
  local cfn_lint python
  cfn_lint="$(find_cfn_lint)"
  python="$(dirname "${cfn_lint}")/python"
  [[ -x "${python}" ]] || python=python3
  "${python}" "${here}/check_parameters.py" "${template}" "$1" ||
    die "fix ${1} (nothing was deployed)"
}

parameter_value() {
  parameter_overrides "$1" | sed -n "s/^$2=//p" | head -n 1
}

stack_name_for() {
  echo "${STACK_NAME:-drawing-analysis-$1}"
}

cmd_deploy() {
  local parameters="${1:-}"
  [[ -n "${parameters}" ]] || die "usage: deploy.sh deploy PARAMETERS.json"
  [[ -f "${parameters}" ]] || die "parameters file not found: ${parameters}"
  check_parameters "${parameters}"
  require aws "https://docs.aws.amazon.com/cli/"
  require python3 "needed to read the parameters file"
  local -a overrides
  mapfile -t overrides < <(parameter_overrides "${parameters}")
  [[ ${#overrides[@]} -gt 0 ]] || die "${parameters}: no parameters"
  local environment owner stack bucket
  environment="$(parameter_value "${parameters}" Environment)"
  environment="${environment:-production}"
  owner="$(parameter_value "${parameters}" Owner)"
  owner="${owner:-drawing-analysis-team}"
  stack="$(stack_name_for "${environment}")"
  have_credentials || die "AWS credentials do not work (aws sts get-caller-identity failed)"
  cmd_validate
  bucket="$(ensure_artifact_bucket)"
  info "deploying stack ${stack} in $(region) (this takes 10-20 minutes on the first run)"
  aws cloudformation deploy \
    --region "$(region)" \
    --stack-name "${stack}" \
    --template-file "${template}" \
    --s3-bucket "${bucket}" \
    --s3-prefix templates \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    --tags "Environment=${environment}" Project=drawing-analysis "Owner=${owner}" \
    --parameter-overrides "${overrides[@]}"
  cmd_outputs "${environment}"
  info "confirm the SNS subscription e-mail to receive alarms and budget alerts"
}

ask() {
  local prompt="$1" default="${2:-}" answer
  if [[ -n "${default}" ]]; then
    read -r -p "${prompt} [${default}]: " answer
  else
    read -r -p "${prompt}: " answer
  fi
  echo "${answer:-${default}}"
}

cmd_interactive() {
  [[ -t 0 ]] || die "no terminal for questions: use 'deploy.sh deploy PARAMETERS.json'"
  require aws "https://docs.aws.amazon.com/cli/"
  echo "Drawing Analysis deployment: answers go to a parameters file you can reuse."
  local environment domain zone prefix ecr tag certificate email
  environment="$(ask "Environment" production)"
  domain="$(ask "Domain name (empty: use the CloudFront address)" "")"
  zone=""
  certificate=""
  if [[ -n "${domain}" ]]; then
    zone="$(ask "Route 53 hosted zone ID of ${domain}" "")"
    certificate="$(ask "ACM certificate ARN in us-east-1 (empty: the stack requests one)" "")"
  fi
  prefix="$(ask "S3 bucket prefix (globally unique, lowercase)" "")"
  [[ -n "${prefix}" ]] || die "a bucket prefix is required"
  ecr="$(ask "ECR repository URI prefix (ACCOUNT.dkr.ecr.REGION.amazonaws.com/drawing-analysis)" "")"
  [[ -n "${ecr}" ]] || die "an ECR URI is required (build and push the images first, see README)"
  tag="$(ask "Image tag" latest)"
  email="$(ask "Cost alert e-mail" "")"
  [[ "${email}" == *@*.* ]] || die "a valid cost alert e-mail is required"
  local file="${here}/parameters.${environment}.json"
  python3 - "${file}" \
    Environment="${environment}" DomainName="${domain}" HostedZoneId="${zone}" \
    CertificateArn="${certificate}" S3BucketPrefix="${prefix}" \
    AppImageUri="${ecr}/app:${tag}" TasksImageUri="${ecr}/tasks:${tag}" \
    CostAlertEmail="${email}" <<'PY'
import json, sys
pairs = [argument.split("=", 1) for argument in sys.argv[2:]]
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump([{"ParameterKey": k, "ParameterValue": v} for k, v in pairs], handle, indent=2)
    handle.write("\n")
PY
  info "wrote ${file}"
  cmd_deploy "${file}"
}

cmd_outputs() {
  local environment="${1:-production}"
  require aws "https://docs.aws.amazon.com/cli/"
  aws cloudformation describe-stacks --region "$(region)" --stack-name "$(stack_name_for "${environment}")" \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table
}

cmd_delete() {
  local environment="${1:-}"
  [[ -n "${environment}" ]] || die "usage: deploy.sh delete ENVIRONMENT"
  require aws "https://docs.aws.amazon.com/cli/"
  local stack answer
  stack="$(stack_name_for "${environment}")"
  [[ -t 0 ]] || die "delete asks for confirmation: run it on a terminal"
  read -r -p "Type the stack name (${stack}) to delete it: " answer
  [[ "${answer}" == "${stack}" ]] || die "not confirmed; nothing deleted"
  aws cloudformation delete-stack --region "$(region)" --stack-name "${stack}"
  aws cloudformation wait stack-delete-complete --region "$(region)" --stack-name "${stack}"
  info "deleted ${stack}; the buckets and the EFS file system were retained (see README, teardown)"
}

main() {
  local command="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "${command}" in
    "") cmd_interactive ;;
    deploy) cmd_deploy "$@" ;;
    validate) cmd_validate ;;
    outputs) cmd_outputs "$@" ;;
    delete) cmd_delete "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      die "unknown command: ${command}"
      ;;
  esac
}

main "$@"
