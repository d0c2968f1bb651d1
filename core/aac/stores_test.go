package aac_test

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/onboard-dev/onboard/core/state/dynamostore"
	"github.com/onboard-dev/onboard/core/state/firestorestore"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

// The cold start again with the chain in each cloud's database, through its
// emulator: the lease and the compare-and-swap are theirs now.

func TestColdInstancesShareOneRotationFirestore(t *testing.T) {
	client, err := firestore.NewClient(t.Context(), "onboard-test", option.WithEndpoint(emulators.Firestore(t)),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	// Collections of its own, so a repeated run does not find this run's chain.
	store, err := firestorestore.New(client, firestorestore.Options{Prefix: fmt.Sprintf("aac%d_", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	coldStart(t, store, 20)
}

func TestColdInstancesShareOneRotationDynamoDB(t *testing.T) {
	cfg := emulators.AWSConfig(t, emulators.Moto(t))
	// One request at a time on the wire: moto checks a write's condition and
	// writes without a lock, which DynamoDB does not (see dynamostore's tests).
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	client := dynamodb.NewFromConfig(cfg)
	table := fmt.Sprintf("onboard-aac-%d", time.Now().UnixNano())
	if err := dynamostore.CreateTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	coldStart(t, dynamostore.New(client, table), 20)
}
