# PayGate Events. `make dev` runs everything locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help dev test validate build servers stop

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

stop: ## stop the servers that `make servers` started
	scripts/local.sh stop
