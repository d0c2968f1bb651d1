// Command bootstrap is onboard's AWS Lambda function for Google Sheets
// polls: EventBridge invokes it with {"onboard_task":"sheets-poll:..."}, one
// schedule per sheet. It is the webhook function (../) plus the Sheets
// client, which is why it is a function of its own: the webhook's cold
// starts do not pay for Google's libraries. Build it with
// scripts/build-aws.sh.
package main

import (
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sheets/gsheets"
	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
)

func main() {
	lambdaapi.Serve(map[string]plugin.SourceClient{"sheets": gsheets.Connect})
}
