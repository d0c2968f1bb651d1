#!/usr/bin/env bash
# make destroy-gcp: remove what make deploy-gcp created (terraform destroy of
# infra/gcp in the project's workspace). Asks for confirmation unless FORCE=1;
# DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail

# shellcheck source=scripts/lib-deploy.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-deploy.sh"
repo_root

TF=(terraform -chdir=infra/gcp)

step "prerequisites"
need gcloud terraform
project="${GCP_PROJECT:-${GOOGLE_CLOUD_PROJECT:-}}"
[[ -n "$project" ]] || project="$(gcloud config get-value project 2>/dev/null || true)"
[[ -n "$project" ]] || die "no Google Cloud project: set GCP_PROJECT=my-project"
region="${GCP_REGION:-}"
[[ -n "$region" ]] || region="$(gcloud config get-value functions/region 2>/dev/null || true)"
[[ -n "$region" ]] || die "no region: set GCP_REGION to the region you deployed to"
name="${ONBOARD_NAME:-onboard}"
check_name "$name"
if dry_run; then
  say "DRY_RUN=1: printing the commands instead of running them; login checks skipped."
else
  gcloud auth application-default print-access-token >/dev/null 2>&1 ||
    die "Terraform uses Application Default Credentials, which are not set: run 'gcloud auth application-default login'"
fi

cat <<EOF

This removes onboard "$name" from project $project ($region):
  - Cloud Functions $name-http (the webhook URL stops answering) and $name-pubsub
  - Pub/Sub topic $name-provision, its push subscription, the dead-letter topic and
    subscription $name-provision-dead-letter, WITH any messages still in them
  - the Secret Manager secrets (ONBOARD_WEBHOOK_SECRET, LOOKERSDK_*, SENDGRID_API_KEY, AAC_*,
    PERISCOPE_SITES, GOOGLE_SHEETS_CREDENTIALS, ONBOARD_SCIM_TOKEN) WITH their values
  - the service accounts $name-fn, $name-push, $name-build and every IAM binding made for them
  - the source bucket $project-$name-source, the Firestore TTL settings, the DLQ alert policy,
    the Cloud Scheduler jobs $name-aac-keep-alive and $name-sheets-poll-<hash> for each polled sheet
It keeps:
  - the Firestore database and its data (idempotency records, tokens, audit log);
    delete it yourself with: gcloud firestore databases delete --database='(default)' --project $project
    (or the database you set in firestore_database)
  - the enabled APIs, and the function images in Artifact Registry (gcf-artifacts)
EOF
confirm "$project"

step "destroy"
run "${TF[@]}" init -input=false
run "${TF[@]}" workspace select "$project"
run "${TF[@]}" destroy -input=false -auto-approve -var "project=$project" -var "region=$region" -var "name=$name"
finish "done: onboard \"$name\" removed from $project."
