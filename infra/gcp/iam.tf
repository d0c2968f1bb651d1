# Identities, each with only what it needs. No primitive role (owner, editor,
# viewer) anywhere; a test fails the build if one appears.
#
#   fn     runs both functions: reads each named secret (secrets.tf), reads and
#          writes the Firestore database. Nothing else: no Pub/Sub role,
#          because messages are pushed to it, never pulled.
#   push   signs the push subscription's requests to ProvisionPubSub (OIDC);
#          may invoke that one function and nothing else.
#   build  Cloud Build's identity while building the functions from source
#          (new projects no longer give the default build account these roles).

resource "google_service_account" "fn" {
  project      = var.project
  account_id   = "${var.name}-fn"
  display_name = "onboard functions (${var.name})"
  description  = "Runs the onboard Cloud Functions: secret accessor on its own secrets, Firestore user."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = "${var.name}-push"
  display_name = "onboard Pub/Sub push (${var.name})"
  description  = "Identity of the Pub/Sub push subscription; may only invoke the Pub/Sub function."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "build" {
  project      = var.project
  account_id   = "${var.name}-build"
  display_name = "onboard function builds (${var.name})"
  description  = "Cloud Build identity for building the onboard functions."

  depends_on = [google_project_service.apis]
}

# Firestore has no per-collection IAM; the condition limits the grant to the
# one database onboard uses.
resource "google_project_iam_member" "fn_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.fn.member

  condition {
    title       = "onboard-firestore-only"
    description = "Only the database the onboard state store uses."
    expression  = "resource.name == \"projects/${var.project}/databases/${var.firestore_database}\""
  }
}

# Google's documented minimum for a custom Cloud Build service account of
# Cloud Run functions: build logs, the built image, the uploaded source
# (copied by Cloud Functions into its own gcf-v2-sources bucket, hence
# project-level).
resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
    "roles/storage.objectAdmin",
  ])

  project = var.project
  role    = each.value
  member  = google_service_account.build.member
}

# Older projects' Pub/Sub service agent may lack the right to mint the push
# identity's OIDC tokens; granting it on this one account is harmless on
# newer projects.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}
