#!/usr/bin/env bash
# make deploy-aws: build onboard's Lambdas and deploy infra/aws/template.yaml
# (AWS SAM) with the AWS CLI alone: `aws cloudformation package` uploads the
# zips, `aws cloudformation deploy` creates or updates the stack. No SAM CLI.
# The template deployed is a copy with a schedule per Google Sheet the policy
# polls (infra/aws/schedules explains why), in dist/aws/template.yaml; the
# Sheets poller they invoke is deployed only when there is one.
#
#   AWS_REGION                   where (else AWS_DEFAULT_REGION, else aws configure's region)
#   the policy's targets' settings  required only for targets it uses (onboard settings lists them),
#                                e.g. LOOKERSDK_BASE_URL for a Looker profile
#   ONBOARD_CONFIG               the policy to ship (default onboard.yaml)
#   ONBOARD_NAME                 stack name (default onboard)
#   ARTIFACT_BUCKET              S3 bucket for the zip (default <name>-artifacts-<account>-<region>, created)
#   LOOKERSDK_VERIFY_SSL, LOOKERSDK_TIMEOUT, SENDGRID_BASE_URL, AAC_BASE_URL, *_MAX_RPS,
#   AAC_ACCOUNT_ID, AAC_TOKEN_URL, PERISCOPE_BASE_URL, ONBOARD_LOG_LEVEL, ALERT_EMAIL   optional
#   AAC_KEEP_ALIVE=false         disable the daily AAC keep-alive schedule (kept on later
#                                deploys until AAC_KEEP_ALIVE=true)
#   DRY_RUN=1                    print every command instead of running it
#                                (AWS_ACCOUNT_ID stands in for the account it cannot look up)
set -euo pipefail

# shellcheck source=scripts/lib-deploy.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-deploy.sh"
repo_root

step "prerequisites"
need aws zip make go
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[[ -n "$region" ]] || region="$(aws configure get region 2>/dev/null || true)"
[[ -n "$region" ]] || die "no AWS region: set AWS_REGION=eu-west-1 (or run: aws configure set region eu-west-1)"
stack="${ONBOARD_NAME:-onboard}"
check_name "$stack"
policy="$(policy_file)"
check_settings "$policy"
if dry_run; then
  account="${AWS_ACCOUNT_ID:-ACCOUNT_ID}"
  say "DRY_RUN=1: printing the commands instead of running them; login check skipped (account $account assumed)."
else
  account="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" ||
    die "aws has no working credentials: run 'aws configure' or 'aws sso login' (check: aws sts get-caller-identity)"
fi
bucket="${ARTIFACT_BUCKET:-$stack-artifacts-$account-$region}"
say "stack $stack, region $region, account $account, artifacts s3://$bucket, policy $policy"

# The webhook and queue function's, and the Sheets poller's.
zips=(onboard-lambda.zip onboard-sheets-lambda.zip)

step "build (make build writes the linux/arm64 bootstraps into dist/${zips[0]} and dist/${zips[1]})"
run make build
for z in "${zips[@]}"; do
  if ! dry_run && [[ ! -f dist/$z ]]; then
    die "make build did not produce dist/$z"
  fi
done

step "package: each Lambda zip plus $policy as onboard.yaml"
run rm -rf dist/aws
run mkdir -p dist/aws/policy
run cp -p "$policy" dist/aws/policy/onboard.yaml
for z in "${zips[@]}"; do
  run cp "dist/$z" "dist/aws/$z"
  run_sh "cd dist/aws/policy && zip -X -q ../$z onboard.yaml"
done

step "schedules: an EventBridge schedule per Google Sheet the policy polls, on $stack-sheets-poll"
schedules="$(policy_schedules "$policy")"
say "${schedules:-none: the policy polls no Google Sheet, so the stack has no $stack-sheets-poll}" | sed 's/^/  /'
run_sh "$(task_list_json "$policy") | go run ./infra/aws/schedules infra/aws/template.yaml >dist/aws/template.yaml"

step "artifact bucket (private, created once)"
run_sh "aws s3api head-bucket --bucket $bucket >/dev/null 2>&1 || aws s3 mb s3://$bucket --region $region"

step "deploy the stack (dist/aws/template.yaml: infra/aws/template.yaml and the schedules)"
params=()
[[ -n "${LOOKERSDK_BASE_URL:-}" ]] && params+=("LookerBaseUrl=$LOOKERSDK_BASE_URL")
[[ -n "${LOOKERSDK_VERIFY_SSL:-}" ]] && params+=("LookerVerifySsl=$LOOKERSDK_VERIFY_SSL")
[[ -n "${LOOKERSDK_TIMEOUT:-}" ]] && params+=("LookerTimeoutSeconds=$LOOKERSDK_TIMEOUT")
[[ -n "${SENDGRID_BASE_URL:-}" ]] && params+=("SendGridBaseUrl=$SENDGRID_BASE_URL")
[[ -n "${AAC_BASE_URL:-}" ]] && params+=("AacBaseUrl=$AAC_BASE_URL")
[[ -n "${AAC_ACCOUNT_ID:-}" ]] && params+=("AacAccountId=$AAC_ACCOUNT_ID")
[[ -n "${AAC_TOKEN_URL:-}" ]] && params+=("AacTokenUrl=$AAC_TOKEN_URL")
[[ -n "${PERISCOPE_BASE_URL:-}" ]] && params+=("PeriscopeBaseUrl=$PERISCOPE_BASE_URL")
[[ -n "${LOOKERSDK_MAX_RPS:-}" ]] && params+=("LookerMaxRps=$LOOKERSDK_MAX_RPS")
[[ -n "${AAC_MAX_RPS:-}" ]] && params+=("AacMaxRps=$AAC_MAX_RPS")
[[ -n "${PERISCOPE_MAX_RPS:-}" ]] && params+=("PeriscopeMaxRps=$PERISCOPE_MAX_RPS")
[[ -n "${SENDGRID_MAX_RPS:-}" ]] && params+=("SendGridMaxRps=$SENDGRID_MAX_RPS")
[[ -n "${ONBOARD_LOG_LEVEL:-}" ]] && params+=("LogLevel=$ONBOARD_LOG_LEVEL")
[[ -n "${ALERT_EMAIL:-}" ]] && params+=("AlarmEmail=$ALERT_EMAIL")
[[ -n "${AAC_KEEP_ALIVE:-}" ]] && params+=("AacKeepAlive=$AAC_KEEP_ALIVE")
# Every deploy says whether the stack has the poller, which is for the
# schedules rendered above: the template's SheetPolls explains why it is not
# left to a Default.
if [[ -n "$schedules" ]]; then params+=("SheetPolls=true"); else params+=("SheetPolls=false"); fi
run aws cloudformation package --region "$region" --template-file dist/aws/template.yaml \
  --s3-bucket "$bucket" --s3-prefix "$stack" --output-template-file dist/aws/packaged.yaml
run aws cloudformation deploy --region "$region" --stack-name "$stack" \
  --template-file dist/aws/packaged.yaml --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --no-fail-on-empty-changeset ${params[@]+--parameter-overrides "${params[@]}"}

step "result"
api="" queue="" dlq="" secret=""
outputs=(aws cloudformation describe-stacks --region "$region" --stack-name "$stack" --output text --query)
capture api "<ApiUrl>" "${outputs[@]}" "Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue"
capture queue "<QueueUrl>" "${outputs[@]}" "Stacks[0].Outputs[?OutputKey=='QueueUrl'].OutputValue"
capture dlq "<DeadLetterQueueUrl>" "${outputs[@]}" "Stacks[0].Outputs[?OutputKey=='DeadLetterQueueUrl'].OutputValue"
capture secret "<SecretArn>" "${outputs[@]}" "Stacks[0].Outputs[?OutputKey=='SecretArn'].OutputValue"
api="${api%/}"
sheets="$(polled_sheets "$policy")"
cat <<EOF

Webhook URL (public; the webhook secret is the gate): $api/
SQS queue: $queue
Dead-letter queue (alarm when not empty): $dlq

Set the secret once: one JSON object holding every key you use (created empty; the function
fails to start until it has a value). Write it to a file outside the repository, then:
  aws secretsmanager put-secret-value --region $region --secret-id $secret --secret-string file://onboard-secrets.json
Keys this policy needs: $(needed_secrets "$policy")
(e.g. {"ONBOARD_WEBHOOK_SECRET":"...", ...}), then rm the file.
EOF
if [[ -n "$sheets" ]]; then
  cat <<EOF

Google Sheets: $stack-sheets-poll reads and writes each polled sheet as a Google service account.
Put that account's key file (the JSON itself, as an object) in the secret under
GOOGLE_SHEETS_CREDENTIALS, and share each sheet with the key's client_email as Editor (Share,
paste the address, Editor: the status column is written); until then its polls fail and the
sheets-poll alarm fires:
$(say "$sheets" | sed 's/^/  /')
EOF
fi
cat <<EOF

Try it:
  curl -sS $api/healthz
  curl -sS $api/ -H 'Content-Type: application/json' -H "Authorization: Bearer \$ONBOARD_WEBHOOK_SECRET" \\
    -d '{"email":"ada@example.com","name":"Ada Lovelace"}'
  aws sqs send-message --region $region --queue-url $queue --message-body '{"email":"ada@example.com","name":"Ada Lovelace"}'
  aws sqs receive-message --region $region --queue-url $dlq --max-number-of-messages 10 --visibility-timeout 0   # dead letters
EOF
finish "deployed: stack $stack in $region."
