# onboard: every command a developer or CI needs. `make help` lists them.
GO      ?= go
PORT    ?= 8080
FUZZTIME ?= 30s
PKGS    := ./...

.DEFAULT_GOAL := help

.PHONY: help run test build lint bench fuzz fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: ## serve onboard on localhost:$(PORT) (sandbox mode without LOOKERSDK_BASE_URL)
	PORT=$(PORT) $(GO) run ./cmd/onboard serve

test: lint ## lint, then every test (emulator tests skip outside CI when the emulator is missing)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

build: ## compile every package, the CLI into bin/, the Lambda zips into dist/
	$(GO) build $(PKGS)
	$(GO) build -o bin/onboard ./cmd/onboard
	GO=$(GO) bash scripts/build-aws.sh dist
	bash scripts/build-gcp.sh bin/onboard-gcp

lint: ## gofmt, go vet and go mod tidy -diff
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt wants to change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }

bench: ## every benchmark side by side in one run; writes the table into docs/benchmarks.md
	GO=$(GO) bash scripts/bench.sh

fuzz: ## every fuzz target for FUZZTIME each (default 30s); failing inputs land in testdata/fuzz as seeds
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

fmt: ## format the code
	gofmt -w .

clean: ## remove build output and local state
	rm -rf bin dist .onboard

# Deploys (README "Deploy"). DRY_RUN=1 prints every command instead of running it.
.PHONY: deploy-gcp deploy-aws destroy-gcp destroy-aws

deploy-gcp: ## build and deploy to Google Cloud with Terraform (infra/gcp); DRY_RUN=1 shows the commands
	bash scripts/deploy-gcp.sh

deploy-aws: ## build and deploy to AWS (SAM template infra/aws, AWS CLI only); DRY_RUN=1 shows the commands
	bash scripts/deploy-aws.sh

destroy-gcp: ## remove the Google Cloud deployment (says what it removes, asks unless FORCE=1)
	bash scripts/destroy-gcp.sh

destroy-aws: ## delete the AWS stack (says what it removes, asks unless FORCE=1)
	bash scripts/destroy-aws.sh
