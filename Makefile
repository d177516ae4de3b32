# PayGate Events. `make dev` runs everything locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help dev test validate build servers stop watch invoke bench capacity deploy-local

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

dev: ## run everything locally: servers, tables, queues, demo account, HTTP API on 127.0.0.1:3000
	cargo run -q --locked -p paygate-cli --bin paygate -- dev

test: ## install what is missing, start the local servers, lint, run every test, stop what it started
	scripts/test.sh

validate: ## sam validate --lint and cfn-lint (serverless rules) on template.yaml
	scripts/validate.sh

servers: ## start DynamoDB Local and the SQS server in the background
	scripts/local.sh start >/dev/null

deploy-local: ## deploy template.yaml itself on a local AWS emulator (IAM enforced); prints the API URL and a key
	scripts/deploy-local.sh

stop: ## stop the servers that `make servers` and `make deploy-local` started
	scripts/local.sh stop

build: ## sam build: arm64 bootstraps of every function (cargo-lambda, zig), then the zip sizes
	scripts/build.sh

watch: ## cargo lambda watch: every function on 127.0.0.1:9000, talking to the local servers (make servers first)
	scripts/invoke.sh watch

invoke: ## invoke one function with a sample event: make invoke FN=get-event EVENT=events/get-event.apigw.json
	scripts/invoke.sh invoke "$(FN)" "$(EVENT)"

bench: ## the performance table, every row against a baseline from the same run (about 10 min; not in CI)
	scripts/bench.sh

capacity: ## DynamoDB units per operation and key, every ceiling against its goal, the goal traffic simulated (a few minutes; not in CI)
	scripts/capacity.sh
