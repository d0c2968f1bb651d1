#!/usr/bin/env bash
# make destroy-aws: delete the CloudFormation stack make deploy-aws created.
# Asks for confirmation unless FORCE=1; DRY_RUN=1 prints the commands instead
# of running them.
set -euo pipefail

# shellcheck source=scripts/lib-deploy.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-deploy.sh"
repo_root

step "prerequisites"
need aws
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[[ -n "$region" ]] || region="$(aws configure get region 2>/dev/null || true)"
[[ -n "$region" ]] || die "no AWS region: set AWS_REGION to the region you deployed to"
stack="${ONBOARD_NAME:-onboard}"
check_name "$stack"
if dry_run; then
  account="${AWS_ACCOUNT_ID:-ACCOUNT_ID}"
  say "DRY_RUN=1: printing the commands instead of running them; login check skipped (account $account assumed)."
else
  account="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" ||
    die "aws has no working credentials: run 'aws configure' or 'aws sso login'"
  aws cloudformation describe-stacks --region "$region" --stack-name "$stack" >/dev/null 2>&1 ||
    die "no stack $stack in $region: nothing to destroy (set ONBOARD_NAME and AWS_REGION as for the deploy)"
fi
bucket="${ARTIFACT_BUCKET:-$stack-artifacts-$account-$region}"

step "what stays"
table=""
capture table "<StateTable>" aws cloudformation describe-stack-resource --region "$region" --stack-name "$stack" \
  --logical-resource-id StateTable --query StackResourceDetail.PhysicalResourceId --output text

cat <<EOF

This deletes stack $stack in $region (account $account):
  - the Lambda function $stack-provision and its HTTP API (the webhook URL stops answering)
  - the SQS queue and its dead-letter queue, WITH any messages still in them
  - the Secrets Manager secret WITH its value
  - the IAM role, the log group /aws/lambda/$stack-provision and its logs, the alarms (dead
    letters, failed invocations) and their SNS topic, the AAC keep-alive schedule (EventBridge rule)
  - if the policy polled Google Sheets: the Lambda function $stack-sheets-poll, its schedules
    (EventBridge rules, one per sheet), its role, alarm and log group /aws/lambda/$stack-sheets-poll
It keeps:
  - the DynamoDB table $table (DeletionPolicy Retain: idempotency records, tokens, audit log);
    delete it yourself with: aws dynamodb delete-table --region $region --table-name $table
  - the artifact bucket s3://$bucket (the uploaded zips);
    empty and remove it with: aws s3 rb s3://$bucket --force
EOF
confirm "$stack"

step "delete"
run aws cloudformation delete-stack --region "$region" --stack-name "$stack"
run aws cloudformation wait stack-delete-complete --region "$region" --stack-name "$stack"
finish "done: stack $stack deleted."
