// Command lambda is the ingest function's AWS Lambda binary (bootstrap of
// the provided.al2023 runtime, built with -tags lambda.norpc). Its
// configuration is described in package lambdaenv; main only wires.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flowlake/flowlake/functions/internal/lambdaenv"
)

func main() {
	h, err := lambdaenv.Main(context.Background(), "ingest", os.Getenv, os.Stdout, lambdaenv.Ingest)
	if err != nil {
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
