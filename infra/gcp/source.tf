# The function source: scripts/deploy-gcp.sh zips the module root (tracked
# files, minus infra/, scripts/ and .ci/) with the policy file as onboard.yaml
# into dist/gcp/onboard-source.zip; Terraform uploads it under its MD5, so a
# changed source is a new object and a rebuild, an unchanged one is neither.

resource "google_storage_bucket" "source" {
  project                     = var.project
  name                        = "${var.project}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  # fileexists keeps `terraform destroy` working without a built zip.
  name   = "source/${fileexists(var.source_zip) ? filemd5(var.source_zip) : "missing"}.zip"
  source = var.source_zip
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
