# The daily AAC keep-alive. AAC refresh tokens expire at the lifetime chosen
# when they were generated even when unused, so a quiet workspace's chain
# must be rotated on a timer. Cloud Scheduler publishes a task message to the
# provisioning topic, so the task gets the push subscription's retries and
# the dead-letter alert for free: ProvisionPubSub runs the task the
# onboard_task attribute names and ignores the data. Without AAC configured
# the task succeeds doing nothing.
#
# Cloud Scheduler publishes as its service agent, which holds
# roles/cloudscheduler.serviceAgent (pubsub.topics.publish) from the moment
# the API is enabled; no grant is needed here.

resource "google_cloud_scheduler_job" "aac_keep_alive" {
  count = var.aac_keep_alive ? 1 : 0

  project     = var.project
  region      = var.region
  name        = "${var.name}-aac-keep-alive"
  description = "onboard: rotate AAC token chains unused for a week, so their refresh tokens do not expire."
  # Off the hour, when many other schedules fire.
  schedule  = "17 3 * * *"
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.provision.id
    # ProvisionPubSub ignores the data: the attribute names the task.
    data = base64encode("{}")
    attributes = {
      onboard_task = "aac-keep-alive"
    }
  }

  depends_on = [google_project_service.apis]
}
