# An alert when the dead-letter subscription holds a message: each one is a
# request, or a scheduled task, onboard gave up on after
# max_delivery_attempts deliveries.

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email != "" ? 1 : 0

  project      = var.project
  display_name = "onboard ${var.name} dead letters"
  type         = "email"

  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project
  display_name = "onboard ${var.name}: dead-lettered Pub/Sub messages"
  combiner     = "OR"

  conditions {
    display_name = "${google_pubsub_subscription.dead_letter.name} is not empty"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message failed ${var.max_delivery_attempts} times and was dead-lettered: a provisioning request, or the daily AAC keep-alive (attribute onboard_task; a CRITICAL log line names the broken chain and its fix). Read it with `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter.name} --project ${var.project} --limit 10`, fix the cause, then republish it to ${google_pubsub_topic.provision.name}."
  }

  notification_channels = google_monitoring_notification_channel.email[*].id

  depends_on = [google_project_service.apis]
}
