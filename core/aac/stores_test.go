package aac_test

import (
	"os"
	"testing"

	"github.com/onboard-dev/onboard/core/state/statetest"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

// The cold start again with the chain in each cloud's database, through its
// emulator: the lease and the compare-and-swap are theirs now.

func TestColdInstancesShareOneRotationFirestore(t *testing.T) {
	coldStart(t, statetest.Firestore(t), 20)
}

func TestColdInstancesShareOneRotationDynamoDB(t *testing.T) {
	coldStart(t, statetest.DynamoDB(t), 20)
}
