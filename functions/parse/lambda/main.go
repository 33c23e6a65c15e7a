// Command lambda is the parse function's AWS Lambda binary (bootstrap of
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
	h, err := lambdaenv.Main(context.Background(), "parse", os.Getenv, os.Stdout, lambdaenv.Parse)
	if err != nil {
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
