// Package infra holds onboard's infrastructure as code and the offline
// checks of it; it has no code of its own.
//
//   - gcp/: Terraform for Google Cloud (Cloud Functions gen2, Pub/Sub with a
//     dead-letter topic, Secret Manager, Firestore), applied by
//     scripts/deploy-gcp.sh (make deploy-gcp).
//   - aws/template.yaml: an AWS SAM template (Lambda, HTTP API, SQS with a
//     dead-letter queue, DynamoDB, Secrets Manager), deployed by
//     scripts/deploy-aws.sh (make deploy-aws) with the AWS CLI alone, after
//     aws/schedules adds a schedule per Google Sheet the policy polls.
//
// The tests need no network and no cloud account. They run terraform fmt
// and cfn-lint when present (and fail without them under CI=true), parse the
// HCL and the template to assert what matters (dead letters, least
// privilege, TTL, batch failures, runtimes, entry points that exist in the
// Go code), and compare the deploy scripts' DRY_RUN=1 output with
// testdata/deploy/*.golden (go test ./infra -update rewrites them).
package infra
