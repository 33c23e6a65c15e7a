// Package infra holds what deploys flowlake and the checks that keep the
// deployment honest: the Terraform modules for AWS and MinIO
// (infra/terraform), the Kubernetes manifests (infra/k8s), the query
// recipes (infra/recipes) and the cost model (infra/cost).
//
// The Go code here generates the Glue table definitions of the AWS module
// from schema/ (GlueTables, written by `go generate ./infra`); the tests
// parse the Terraform with hashicorp/hcl and check its wiring, and apply
// the same policy documents to a real MinIO and run the pipeline through
// them.
package infra

//go:generate go run ./gluegen -o terraform/modules/aws/glue_tables.tf.json
