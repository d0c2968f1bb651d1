# Pub/Sub: a topic to publish provisioning requests to, a push subscription we
# own (not the function's Eventarc trigger, which has no dead-letter setting),
# and a dead-letter topic whose own subscription keeps what could not be
# delivered.
#
#   publish -> topic -> push subscription --(OIDC, retried with backoff)--> ProvisionPubSub
#                            | after max_delivery_attempts
#                            v
#                       dead-letter topic -> dead-letter subscription (kept 7 days, alerted on)
#
# ProvisionPubSub answers 2xx for done or permanently refused (a poison
# message is logged and acknowledged), and an error for retryable failures,
# which Pub/Sub redelivers.

resource "google_pubsub_topic" "provision" {
  project = var.project
  name    = "${var.name}-provision"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project
  name    = "${var.name}-provision-dead-letter"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "push" {
  project = var.project
  name    = "${var.name}-provision-push"
  topic   = google_pubsub_topic.provision.id

  # At least the function's timeout, so a slow delivery is not sent twice.
  ack_deadline_seconds       = var.pubsub_timeout_seconds
  message_retention_duration = "604800s"

  push_config {
    # The /projects/P/topics/T path makes the Functions Framework turn the
    # raw push body into a messagePublished CloudEvent.
    push_endpoint = "${google_cloudfunctions2_function.pubsub.service_config[0].uri}/projects/${var.project}/topics/${google_pubsub_topic.provision.name}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.pubsub.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never delete the subscription for inactivity (the default is 31 days).
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invokes_pubsub,
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
  ]
}

# Keeps dead letters: a topic without a subscription drops what it receives.
# Read them with `gcloud pubsub subscriptions pull` (docs/deploy.md).
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project
  name    = "${var.name}-provision-dead-letter"
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by Google's Pub/Sub service agent: it must be able to
# publish to the dead-letter topic and to acknowledge (subscribe on) the
# source subscription.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_source" {
  project      = var.project
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
