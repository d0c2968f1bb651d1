# The state store (ONBOARD_STORE=firestore): idempotency records, rotating
# tokens and the audit log, in a native-mode database (the project's
# "(default)" unless var.firestore_database names another).
#
# deletion_policy ABANDON: `terraform destroy` forgets the database but keeps
# it and its data (docs/deploy.md shows how to delete it).

resource "google_firestore_database" "store" {
  count = var.create_firestore_database ? 1 : 0

  project         = var.project
  name            = var.firestore_database
  location_id     = var.firestore_location != "" ? var.firestore_location : var.region
  type            = "FIRESTORE_NATIVE"
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.apis]
}

# Documents are deleted (within about a day) once their expires_at timestamp
# has passed. Documents without the field never expire.
resource "google_firestore_field" "ttl" {
  for_each = toset(var.firestore_ttl_collection_groups)

  project    = var.project
  database   = var.firestore_database
  collection = each.value
  field      = "expires_at"

  ttl_config {}

  depends_on = [google_firestore_database.store]
}
