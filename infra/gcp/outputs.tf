output "http_url" {
  description = "The webhook URL (ProvisionHTTP): POST / with the webhook secret; GET /healthz."
  value       = google_cloudfunctions2_function.http.service_config[0].uri
}

output "pubsub_topic" {
  description = "Publish provisioning requests here (message data: the request JSON)."
  value       = google_pubsub_topic.provision.name
}

output "pubsub_topic_id" {
  description = "The topic's full resource name."
  value       = google_pubsub_topic.provision.id
}

output "dead_letter_topic" {
  description = "Where messages go after max_delivery_attempts failed deliveries."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription" {
  description = "Holds the dead letters (7 days); pull them from here."
  value       = google_pubsub_subscription.dead_letter.name
}

output "function_service_account" {
  description = "The functions' identity."
  value       = google_service_account.fn.email
}

output "secret_ids" {
  description = "The Secret Manager secrets to fill (created empty)."
  value       = sort([for s in google_secret_manager_secret.secret : s.secret_id])
}
