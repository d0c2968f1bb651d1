// Command hellolambda is the smallest aws-lambda-go function, built the
// same way as onboard's bootstrap: the yardstick of its size budget.
package main

import "github.com/aws/aws-lambda-go/lambda"

func main() { lambda.Start(func() (string, error) { return "hello", nil }) }
