package statetest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/dynamostore"
	"github.com/onboard-dev/onboard/core/state/firestorestore"
	"github.com/onboard-dev/onboard/internal/emulators"
)

// Firestore opens a store on the Firestore emulator, in collections of its
// own, so a repeated run never finds an earlier run's records. The calling
// package needs emulators.Run in its TestMain.
func Firestore(t testing.TB) state.Store {
	t.Helper()
	client, err := firestore.NewClient(t.Context(), "onboard-test", option.WithEndpoint(emulators.Firestore(t)),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	store, err := firestorestore.New(client, firestorestore.Options{Prefix: fmt.Sprintf("t%d_", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// DynamoDB opens a store on moto_server, in a table of its own. Requests
// go one at a time on the wire: moto checks a write's condition and writes
// without a lock, which DynamoDB does not (see dynamostore's tests), so
// this keeps the test about our conditions, not moto's thread safety.
func DynamoDB(t testing.TB) state.Store {
	t.Helper()
	cfg := emulators.AWSConfig(t, emulators.Moto(t))
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	client := dynamodb.NewFromConfig(cfg)
	table := fmt.Sprintf("onboard-t%d", time.Now().UnixNano())
	if err := dynamostore.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	return dynamostore.New(client, table)
}
