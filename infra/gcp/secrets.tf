# Secret Manager secrets, created EMPTY: no google_secret_manager_secret_version
# here, so no value ever enters Terraform's state or plan. Set each value with
#   gcloud secrets versions add NAME --project PROJECT --data-file=-
# (docs/deploy.md). The secret ID is the setting name, which is what the
# function reads (ONBOARD_SECRETS=gcp, project ONBOARD_GCP_PROJECT, version
# "latest"). A secret without a version reads as "not set".
#
# A secret with no version costs nothing; each active version is billed.

locals {
  secret_names = toset([
    "ONBOARD_WEBHOOK_SECRET",
    "ONBOARD_SCIM_TOKEN",
    "LOOKERSDK_CLIENT_ID",
    "LOOKERSDK_CLIENT_SECRET",
    "SENDGRID_API_KEY",
    "AAC_REFRESH_TOKENS",
    "AAC_ACCOUNT_REFRESH_TOKEN",
    "AAC_CLIENT_ID",
    "PERISCOPE_SITES",
    # Left empty, Google Sheets are read as the fn account itself (the
    # function asks the metadata server). It exists because the function
    # reads every secret onboard knows at start-up, and an absent one reads
    # as "permission denied", not "not set"; a key set here is used instead.
    "GOOGLE_SHEETS_CREDENTIALS",
  ])
}

resource "google_secret_manager_secret" "secret" {
  for_each = local.secret_names

  project   = var.project
  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# Read access, one binding per secret (never project-wide): the function's
# account can read these secrets and no other secret in the project.
resource "google_secret_manager_secret_iam_member" "fn_access" {
  for_each = google_secret_manager_secret.secret

  project   = var.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn.member
}
