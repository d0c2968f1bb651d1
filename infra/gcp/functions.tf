# Two Cloud Functions (gen2) built from the same source by the Go buildpack,
# which builds the module root package (function.go) and serves the function
# named by entry_point (GOOGLE_FUNCTION_TARGET). Both run as the fn account,
# scale to zero and read their secrets from Secret Manager at start-up.

locals {
  # Plain settings only: secret values come from Secret Manager at run time.
  # Empty optional settings are left out rather than set to "".
  function_env = { for k, v in {
    ONBOARD_SECRETS     = "gcp"
    ONBOARD_GCP_PROJECT = var.project
    ONBOARD_STORE       = "firestore"
    # The store's database; its collections are onboard_* (firestore.tf).
    ONBOARD_FIRESTORE_DATABASE = var.firestore_database
    # The buildpack keeps the uploaded source in this directory, relative to
    # the function's working directory; the deploy script put the policy there.
    ONBOARD_CONFIG       = "serverless_function_source_code/onboard.yaml"
    ONBOARD_LOG_LEVEL    = var.log_level
    LOOKERSDK_BASE_URL   = var.looker_base_url
    LOOKERSDK_VERIFY_SSL = tostring(var.looker_verify_ssl)
    LOOKERSDK_TIMEOUT    = tostring(var.looker_timeout_seconds)
    SENDGRID_BASE_URL    = var.sendgrid_base_url
    AAC_BASE_URL         = var.aac_base_url
    AAC_ACCOUNT_ID       = var.aac_account_id
    AAC_TOKEN_URL        = var.aac_token_url
    PERISCOPE_BASE_URL   = var.periscope_base_url
    LOOKERSDK_MAX_RPS    = var.looker_max_rps
    AAC_MAX_RPS          = var.aac_max_rps
    PERISCOPE_MAX_RPS    = var.periscope_max_rps
    SENDGRID_MAX_RPS     = var.sendgrid_max_rps
  } : k => v if v != "" }

  build_source = {
    bucket = google_storage_bucket.source.name
    object = google_storage_bucket_object.source.name
  }
}

resource "google_cloudfunctions2_function" "http" {
  project     = var.project
  location    = var.region
  name        = "${var.name}-http"
  description = "onboard webhook (ProvisionHTTP): public URL, every POST must carry the webhook secret."

  build_config {
    runtime         = "go126"
    entry_point     = "ProvisionHTTP"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.fn.email
    available_memory               = var.memory
    timeout_seconds                = var.http_timeout_seconds
    min_instance_count             = 0
    max_instance_count             = var.max_instances
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    environment_variables          = local.function_env
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
    google_secret_manager_secret_iam_member.fn_access,
    google_project_iam_member.fn_firestore,
  ]
}

# PUBLIC ON PURPOSE. Zapier, Google Forms/Apps Script and other form tools
# cannot mint Google ID tokens, so the webhook function admits anyone at the
# network level and the application authenticates every request: a POST
# without `Authorization: Bearer <ONBOARD_WEBHOOK_SECRET>` or a valid
# `Onboard-Signature` gets 401, and with no webhook secret set every POST gets
# 401. Only GET /healthz answers without it, and it touches nothing. This is
# the only allUsers grant in the deployment (a test checks it).
resource "google_cloud_run_v2_service_iam_member" "http_public" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.http.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloudfunctions2_function" "pubsub" {
  project     = var.project
  location    = var.region
  name        = "${var.name}-pubsub"
  description = "onboard Pub/Sub consumer (ProvisionPubSub), fed by the push subscription in pubsub.tf."

  build_config {
    runtime         = "go126"
    entry_point     = "ProvisionPubSub"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    service_account_email = google_service_account.fn.email
    available_memory      = var.memory
    timeout_seconds       = var.pubsub_timeout_seconds
    min_instance_count    = 0
    max_instance_count    = var.max_instances
    # Pub/Sub push from this project counts as internal traffic; nothing
    # else can reach this function, and only the push identity may invoke it.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = local.function_env
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_source,
    google_secret_manager_secret_iam_member.fn_access,
    google_project_iam_member.fn_firestore,
  ]
}

# The push subscription's identity may invoke the Pub/Sub function; nobody
# else may.
resource "google_cloud_run_v2_service_iam_member" "push_invokes_pubsub" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.pubsub.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}
