# onboard on Google Cloud: two Cloud Functions (gen2) sharing one service
# account, Secret Manager secrets created empty, a Pub/Sub topic with a push
# subscription and a dead-letter topic, and a Firestore database for the state
# store. `make deploy-gcp` (scripts/deploy-gcp.sh) drives it; docs/deploy.md
# explains it.
#
# State: the local backend, one workspace per project
# (terraform.tfstate.d/<project>/). It holds no secret value: secrets are
# created without versions. To share state, add a "gcs" backend block here.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region

  default_labels = merge({ app = "onboard", deployment = var.name }, var.labels)
}
