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

# The jobs the policy schedules: a poll per Google Sheet under
# sources.sheets. scripts/deploy-gcp.sh passes `onboard task list --json` as
# var.policy_tasks, so a sheet added to onboard.yaml gets its job on the next
# deploy and a sheet removed loses it. Each is published like the keep-alive:
# a failed poll is redelivered with backoff and, after max_delivery_attempts,
# dead-lettered, which fires the alert (a sheet nobody shared fails every
# time). The sheet is read as the fn account, which needs no IAM role for it:
# the sheet is shared with that account's email.
#
# A tab's name may hold any character and a job ID may not, so the ID is the
# task kind and a hash of the name; the description carries the name.
locals {
  policy_schedules = {
    for task in var.policy_tasks : task.name => {
      cron   = task.cron
      job_id = "${var.name}-${split(":", task.name)[0]}-${substr(sha256(task.name), 0, 12)}"
    } if task.cron != null
  }
}

resource "google_cloud_scheduler_job" "policy_task" {
  for_each = local.policy_schedules

  project     = var.project
  region      = var.region
  name        = each.value.job_id
  description = "onboard: ${each.key}"
  schedule    = each.value.cron
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.provision.id
    data       = base64encode("{}")
    attributes = {
      onboard_task = each.key
    }
  }

  depends_on = [google_project_service.apis]
}
