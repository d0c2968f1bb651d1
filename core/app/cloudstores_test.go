package app

import (
	"os"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/state/statetest"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

// The 50 concurrent deliveries again, with the idempotency records, the
// welcome ledger and the journal in each cloud's database (its emulator):
// still one Looker user and one email.

func TestConcurrentDeliveriesFirestore(t *testing.T) {
	w := newWorld(t, lookertest.Options{Latency: 5 * time.Millisecond})
	concurrentDeliveries(t, w, statetest.Firestore(t), 50)
}

func TestConcurrentDeliveriesDynamoDB(t *testing.T) {
	w := newWorld(t, lookertest.Options{Latency: 5 * time.Millisecond})
	concurrentDeliveries(t, w, statetest.DynamoDB(t), 50)
}
