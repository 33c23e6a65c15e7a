// Command lambda is the query function's AWS Lambda binary (bootstrap of
// the provided.al2023 runtime, built with -tags lambda.norpc), behind a
// function URL or an API Gateway HTTP API. Its configuration is described
// in packages lambdaenv and query; main only wires.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flowlake/flowlake/functions/internal/lambdaenv"
	"github.com/flowlake/flowlake/functions/query"
)

func main() {
	s, err := lambdaenv.Main(context.Background(), "query", os.Getenv, os.Stdout, query.LambdaBuilder(os.Getenv))
	if err != nil {
		os.Exit(1)
	}
	lambda.Start(s.HandleLambda)
}
