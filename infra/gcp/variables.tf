variable "project" {
  description = "Project ID to deploy into. One onboard deployment per project: the secret IDs are the setting names (LOOKERSDK_CLIENT_SECRET, ...), as the function reads them."
  type        = string
}

variable "region" {
  description = "Region of the functions, the source bucket and (unless firestore_location is set) the Firestore database, e.g. europe-west1."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name (functions, topics, service accounts, bucket)."
  type        = string
  default     = "onboard"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}$", var.name))
    error_message = "name: 3-20 characters (service account IDs need 6), lower-case letters, digits and '-', starting with a letter."
  }
}

variable "source_zip" {
  description = "The function source: a zip of the module root with the policy as onboard.yaml, built by scripts/deploy-gcp.sh. Relative to infra/gcp."
  type        = string
  default     = "../../dist/gcp/onboard-source.zip"
}

variable "looker_base_url" {
  description = "LOOKERSDK_BASE_URL: the Looker instance root, e.g. https://acme.cloud.looker.com. Empty leaves Looker unconfigured (a profile with a looker: part then refuses to start)."
  type        = string
  default     = ""

  validation {
    condition     = var.looker_base_url == "" || startswith(var.looker_base_url, "https://")
    error_message = "looker_base_url must start with https://."
  }
}

variable "looker_verify_ssl" {
  description = "LOOKERSDK_VERIFY_SSL."
  type        = bool
  default     = true
}

variable "looker_timeout_seconds" {
  description = "LOOKERSDK_TIMEOUT: seconds bounding every Looker call."
  type        = number
  default     = 120
}

variable "sendgrid_base_url" {
  description = "SENDGRID_BASE_URL, e.g. https://api.eu.sendgrid.com. Empty: the default host."
  type        = string
  default     = ""
}

variable "aac_base_url" {
  description = "AAC_BASE_URL (Alteryx Analytics Cloud). Empty: not set."
  type        = string
  default     = ""
}

variable "aac_account_id" {
  description = "AAC_ACCOUNT_ID (needed to list and create AAC workspaces). Empty: not set."
  type        = string
  default     = ""
}

variable "aac_token_url" {
  description = "AAC_TOKEN_URL. Empty: read from the access token's iss claim."
  type        = string
  default     = ""
}

variable "aac_keep_alive" {
  description = "Run the AAC keep-alive daily (a Cloud Scheduler job publishing {onboard_task = \"aac-keep-alive\"} to the provisioning topic). It rotates AAC token chains unused for a week, so their refresh tokens do not expire; without AAC it does nothing."
  type        = bool
  default     = true
}

variable "policy_tasks" {
  description = "The policy's tasks, as `onboard task list --json` prints them (scripts/deploy-gcp.sh passes them in a var file). Each with a cron gets a Cloud Scheduler job publishing {onboard_task = name} to the provisioning topic: a poll per Google Sheet. Those without one are the targets' own, scheduled by this module (aac_keep_alive)."
  type = list(object({
    name = string
    cron = optional(string)
  }))
  default = []
}

variable "periscope_base_url" {
  description = "PERISCOPE_BASE_URL. Empty: not set."
  type        = string
  default     = ""
}

variable "looker_max_rps" {
  description = "LOOKERSDK_MAX_RPS: most calls a second to Looker (0: no cap). Empty: its default."
  type        = string
  default     = ""
}

variable "aac_max_rps" {
  description = "AAC_MAX_RPS: most calls a second to AAC (0: no cap). Empty: its default."
  type        = string
  default     = ""
}

variable "periscope_max_rps" {
  description = "PERISCOPE_MAX_RPS: most calls a second to Periscope (0: no cap). Empty: its default."
  type        = string
  default     = ""
}

variable "sendgrid_max_rps" {
  description = "SENDGRID_MAX_RPS: most calls a second to SendGrid (0: no cap). Empty: its default."
  type        = string
  default     = ""
}

variable "log_level" {
  description = "ONBOARD_LOG_LEVEL: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level: debug, info, warn or error."
  }
}

variable "memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "256Mi"
}

variable "max_instances" {
  description = "Upper bound on instances per function: caps the bill and the load on Looker."
  type        = number
  default     = 10
}

variable "http_timeout_seconds" {
  description = "Request timeout of the webhook function (a bulk body of many people takes a while)."
  type        = number
  default     = 300
}

variable "pubsub_timeout_seconds" {
  description = "Request timeout of the Pub/Sub function; also the push subscription's ack deadline (at most 600 s)."
  type        = number
  default     = 300

  validation {
    condition     = var.pubsub_timeout_seconds >= 10 && var.pubsub_timeout_seconds <= 600
    error_message = "pubsub_timeout_seconds: 10 to 600 (the longest push ack deadline)."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one Pub/Sub message before it goes to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts: 5 to 100 (Pub/Sub's limits)."
  }
}

variable "firestore_database" {
  description = "Firestore database ID for the state store (ONBOARD_FIRESTORE_DATABASE). \"(default)\" is the project's default database; a name such as \"onboard\" keeps the store apart when the project already uses its default database."
  type        = string
  default     = "(default)"
}

variable "create_firestore_database" {
  description = "Create the Firestore database (native mode). Set false when it already exists (it must be in native mode)."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Location of the Firestore database, e.g. eur3, nam5 or a region. Empty: var.region."
  type        = string
  default     = ""
}

variable "firestore_ttl_collection_groups" {
  description = "Collection groups whose documents expire at their expires_at timestamp: the state store's idempotency records and values (audit records carry no expires_at and are kept). Change with ONBOARD_FIRESTORE_PREFIX."
  type        = list(string)
  default     = ["onboard_idempotency", "onboard_values"]
}

variable "alert_email" {
  description = "Email address told when the dead-letter subscription holds a message. Empty: the alert policy still opens incidents in the console."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Extra labels for every resource that takes labels."
  type        = map(string)
  default     = {}
}
