# The APIs this deployment uses. scripts/deploy-gcp.sh enables the same list
# with gcloud before Terraform runs (a test keeps the two equal), so a fresh
# project does not race an API that is still being switched on. Destroy leaves
# them enabled: other things in the project may use them.
locals {
  services = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    # Google Sheets polls call it as the fn account, and a call is refused
    # unless the API is on in the caller's project. On whether or not the
    # policy polls a sheet: enabling an API grants nothing and costs nothing.
    "sheets.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = toset(local.services)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

data "google_project" "this" {
  project_id = var.project

  depends_on = [google_project_service.apis]
}

locals {
  # Google's Pub/Sub service agent: it moves undeliverable messages to the
  # dead-letter topic and signs the push requests' OIDC tokens.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
