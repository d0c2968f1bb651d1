#!/usr/bin/env bash
# make deploy-gcp: build onboard and deploy it to Google Cloud with Terraform
# (infra/gcp). docs/deploy.md explains every setting; in short:
#
#   GCP_PROJECT, GCP_REGION      where (else gcloud's project and functions/region)
#   the policy's targets' settings  required only for targets it uses (onboard settings lists them),
#                                e.g. LOOKERSDK_BASE_URL for a Looker profile
#   ONBOARD_CONFIG               the policy to ship (default onboard.yaml)
#   ONBOARD_NAME                 resource name prefix (default onboard)
#   LOOKERSDK_VERIFY_SSL, LOOKERSDK_TIMEOUT, SENDGRID_BASE_URL, AAC_BASE_URL, *_MAX_RPS,
#   AAC_ACCOUNT_ID, AAC_TOKEN_URL, PERISCOPE_BASE_URL, ONBOARD_LOG_LEVEL, ALERT_EMAIL   optional
#   AAC_KEEP_ALIVE=false         no daily AAC keep-alive schedule (default true)
#   DRY_RUN=1                    print every command instead of running it
set -euo pipefail

# shellcheck source=scripts/lib-deploy.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-deploy.sh"
repo_root

# The APIs the deployment uses; infra/gcp/apis.tf lists the same ones (a test
# keeps them equal). Enabling them here first, and waiting, avoids Terraform
# racing an API that is still being switched on.
SERVICES=(
  artifactregistry.googleapis.com
  cloudbuild.googleapis.com
  cloudfunctions.googleapis.com
  cloudresourcemanager.googleapis.com
  cloudscheduler.googleapis.com
  firestore.googleapis.com
  iam.googleapis.com
  logging.googleapis.com
  monitoring.googleapis.com
  pubsub.googleapis.com
  run.googleapis.com
  secretmanager.googleapis.com
  sheets.googleapis.com
  storage.googleapis.com
)

TF=(terraform -chdir=infra/gcp)

step "prerequisites"
need gcloud terraform git zip make go
project="${GCP_PROJECT:-${GOOGLE_CLOUD_PROJECT:-}}"
[[ -n "$project" ]] || project="$(gcloud config get-value project 2>/dev/null || true)"
[[ -n "$project" ]] || die "no Google Cloud project: set GCP_PROJECT=my-project (or run: gcloud config set project my-project)"
region="${GCP_REGION:-}"
[[ -n "$region" ]] || region="$(gcloud config get-value functions/region 2>/dev/null || true)"
[[ -n "$region" ]] || die "no region: set GCP_REGION=europe-west1 (or run: gcloud config set functions/region europe-west1)"
name="${ONBOARD_NAME:-onboard}"
check_name "$name"
policy="$(policy_file)"
check_settings "$policy"
say "project $project, region $region, name prefix $name, policy $policy"
if dry_run; then
  say "DRY_RUN=1: printing the commands instead of running them; login checks skipped."
else
  gcloud auth print-access-token >/dev/null 2>&1 ||
    die "gcloud is not logged in: run 'gcloud auth login'"
  gcloud auth application-default print-access-token >/dev/null 2>&1 ||
    die "Terraform uses Application Default Credentials, which are not set: run 'gcloud auth application-default login'"
  gcloud projects describe "$project" --format='value(projectId)' >/dev/null 2>&1 ||
    die "project $project does not exist or your account cannot see it (gcloud projects describe $project)"
  say "logged in; project $project is reachable."
fi

step "build (compile every package so a deploy cannot fail on a build error)"
run make build

step "package the function source: the module root, with $policy as onboard.yaml"
zipfile=dist/gcp/onboard-source.zip
run rm -rf dist/gcp
run mkdir -p dist/gcp/policy
run cp -p "$policy" dist/gcp/policy/onboard.yaml
# Tracked and new files that .gitignore does not exclude, minus what the
# function does not need. The Go buildpack builds the root package.
run_sh "git ls-files --cached --others --exclude-standard -- . ':(exclude).ci' ':(exclude)infra' ':(exclude)scripts' ':(exclude)testdata/deploy' | zip -X -q -@ $zipfile"
run_sh "cd dist/gcp/policy && zip -X -q ../onboard-source.zip onboard.yaml"

step "schedules: a Cloud Scheduler job per Google Sheet the policy polls"
schedules="$(policy_schedules "$policy")"
say "${schedules:-none: the policy polls no Google Sheet}" | sed 's/^/  /'
run_sh "{ printf '{\"policy_tasks\": '; $(task_list_json "$policy"); printf '}\\n'; } >dist/gcp/policy-tasks.tfvars.json"

step "enable the APIs (once per project; no-op when already on)"
run gcloud services enable "${SERVICES[@]}" --project "$project"

step "deploy with Terraform (infra/gcp; state in infra/gcp/terraform.tfstate.d/$project)"
tfvars=(-var "project=$project" -var "region=$region" -var "name=$name"
  -var "source_zip=../../$zipfile" -var-file=../../dist/gcp/policy-tasks.tfvars.json)
[[ -n "${LOOKERSDK_BASE_URL:-}" ]] && tfvars+=(-var "looker_base_url=$LOOKERSDK_BASE_URL")
[[ -n "${LOOKERSDK_VERIFY_SSL:-}" ]] && tfvars+=(-var "looker_verify_ssl=$LOOKERSDK_VERIFY_SSL")
[[ -n "${LOOKERSDK_TIMEOUT:-}" ]] && tfvars+=(-var "looker_timeout_seconds=$LOOKERSDK_TIMEOUT")
[[ -n "${SENDGRID_BASE_URL:-}" ]] && tfvars+=(-var "sendgrid_base_url=$SENDGRID_BASE_URL")
[[ -n "${AAC_BASE_URL:-}" ]] && tfvars+=(-var "aac_base_url=$AAC_BASE_URL")
[[ -n "${AAC_ACCOUNT_ID:-}" ]] && tfvars+=(-var "aac_account_id=$AAC_ACCOUNT_ID")
[[ -n "${AAC_TOKEN_URL:-}" ]] && tfvars+=(-var "aac_token_url=$AAC_TOKEN_URL")
[[ -n "${PERISCOPE_BASE_URL:-}" ]] && tfvars+=(-var "periscope_base_url=$PERISCOPE_BASE_URL")
[[ -n "${LOOKERSDK_MAX_RPS:-}" ]] && tfvars+=(-var "looker_max_rps=$LOOKERSDK_MAX_RPS")
[[ -n "${AAC_MAX_RPS:-}" ]] && tfvars+=(-var "aac_max_rps=$AAC_MAX_RPS")
[[ -n "${PERISCOPE_MAX_RPS:-}" ]] && tfvars+=(-var "periscope_max_rps=$PERISCOPE_MAX_RPS")
[[ -n "${SENDGRID_MAX_RPS:-}" ]] && tfvars+=(-var "sendgrid_max_rps=$SENDGRID_MAX_RPS")
[[ -n "${ONBOARD_LOG_LEVEL:-}" ]] && tfvars+=(-var "log_level=$ONBOARD_LOG_LEVEL")
[[ -n "${ALERT_EMAIL:-}" ]] && tfvars+=(-var "alert_email=$ALERT_EMAIL")
[[ -n "${AAC_KEEP_ALIVE:-}" ]] && tfvars+=(-var "aac_keep_alive=$AAC_KEEP_ALIVE")
run "${TF[@]}" init -input=false
run "${TF[@]}" workspace select -or-create=true "$project"
run "${TF[@]}" apply -input=false -auto-approve "${tfvars[@]}"

step "result"
url="" topic="" dead=""
capture url "<http_url>" "${TF[@]}" output -raw http_url
capture topic "$name-provision" "${TF[@]}" output -raw pubsub_topic
capture dead "$name-provision-dead-letter" "${TF[@]}" output -raw dead_letter_subscription
sheets="$(polled_sheets "$policy")" account=""
[[ -z "$sheets" ]] || capture account "<function_service_account>" "${TF[@]}" output -raw function_service_account
cat <<EOF

Webhook URL (public; the webhook secret is the gate): $url
Pub/Sub topic: $topic    dead letters kept in subscription: $dead
EOF
if [[ -n "$sheets" ]]; then
  cat <<EOF

Google Sheets: the function reads and writes each polled sheet as $account.
Share each with that address as Editor (Share, paste the address, Editor: the status column is
written); until then its polls fail, saying so in the log, and end up as dead letters:
$(say "$sheets" | sed 's/^/  /')
EOF
fi
cat <<EOF

Set each secret value once (created empty; values never pass through Terraform).
Type the value, press Enter; it stays out of your shell history:
EOF
for s in $(needed_secrets "$policy"); do
  say "  read -rs V && printf %s \"\$V\" | gcloud secrets versions add $s --project $project --data-file=-"
done
cat <<EOF
Those are the secrets this policy needs; the others stay empty. Instances pick new values up
within the cache TTL.

Try it:
  curl -sS $url/healthz
  curl -sS $url/ -H 'Content-Type: application/json' -H "Authorization: Bearer \$ONBOARD_WEBHOOK_SECRET" \\
    -d '{"email":"ada@example.com","name":"Ada Lovelace"}'
  gcloud pubsub topics publish $topic --project $project --message '{"email":"ada@example.com","name":"Ada Lovelace"}'
  gcloud pubsub subscriptions pull $dead --project $project --limit 10    # dead letters (left in place)
EOF
finish "deployed: onboard \"$name\" in $project ($region)."
